-- segsync's incremental counterpart of models/rfm_values_hist.sql (not a dbt model). It computes the same
-- rows, for the snapshots at or after `snapshot_from` only, from
--   * the state kept in rfm_segments_hist at `carried_at` (the last month start before snapshot_from, whose
--     payments did not change), and
--   * the payments after carried_at,
-- so a monthly refresh reads one month of payments instead of re-aggregating all of them. Tests hold it
-- equal to a full build of rfm_values_hist (test/models-incremental.test.ts).
WITH params AS (
    SELECT CAST('{{ var("as_of") }}' AS timestamptz) AS as_of,
           CAST('{{ var("snapshot_from") }}' AS timestamptz) AS snapshot_from,
           CAST('{{ var("carried_at") }}' AS timestamptz) AS carried_at
),
new_rows AS MATERIALIZED (
    SELECT CAST(p.payment_id AS text) AS payment_id,
           CAST(p.user_id AS text) AS user_id,
           CAST(p.payment_date AS timestamptz) AS payment_date,
           CAST(p.payment_amount AS numeric) AS payment_amount
    FROM {{ ref('fact_payments') }} AS p
    CROSS JOIN params
    WHERE CAST(p.payment_date AS timestamptz) > params.carried_at
      AND CAST(p.payment_date AS timestamptz) <= params.as_of
),
counted_before AS (
    -- Payments whose earliest row is at or before carried_at are in the carried state already: a later row
    -- with the same payment_id is a duplicate (the full model keeps the earliest row too).
    SELECT DISTINCT CAST(p.payment_id AS text) AS payment_id
    FROM {{ ref('fact_payments') }} AS p
    CROSS JOIN params
    -- (false when a unique index on payment_id rules repeats out: then there is nothing to look up)
    WHERE {{ var("payment_ids_may_repeat") }}
      AND CAST(p.payment_date AS timestamptz) <= params.carried_at
      AND CAST(p.payment_id AS text) IN (SELECT new_rows.payment_id FROM new_rows)
),
payments AS (
    -- payment_ids may repeat: the earliest new row of each payment not counted before
    (SELECT DISTINCT ON (new_rows.payment_id)
            new_rows.user_id, new_rows.payment_date, new_rows.payment_amount
     FROM new_rows
     WHERE {{ var("payment_ids_may_repeat") }}
       AND NOT EXISTS (SELECT 1 FROM counted_before WHERE counted_before.payment_id = new_rows.payment_id)
     ORDER BY new_rows.payment_id, new_rows.payment_date, new_rows.user_id, new_rows.payment_amount)
    UNION ALL
    -- a unique index on payment_id: every new row is a new payment, nothing to sort out
    (SELECT new_rows.user_id, new_rows.payment_date, new_rows.payment_amount
     FROM new_rows
     WHERE NOT {{ var("payment_ids_may_repeat") }})
),
user_steps AS (
    SELECT user_id, step_at, SUM(payments) AS payments, SUM(amount) AS amount, MAX(last_payment_date) AS last_payment_date
    FROM (
        -- each new payment at its step (the first snapshot that sees it, at the earliest snapshot_from)
        SELECT payments.user_id,
               GREATEST(
                   LEAST(
                       CASE WHEN payments.payment_date = date_trunc('month', payments.payment_date) THEN payments.payment_date
                            ELSE date_trunc('month', payments.payment_date) + interval '1 month' END,
                       params.as_of),
                   params.snapshot_from) AS step_at,
               1 AS payments,
               payments.payment_amount AS amount,
               payments.payment_date AS last_payment_date
        FROM payments
        CROSS JOIN params
        UNION ALL
        -- the carried state enters as the first computed snapshot's step
        SELECT hist.user_id, params.snapshot_from, hist.frequency, hist.monetary, hist.max_payment_date
        FROM {{ ref('rfm_segments_hist') }} AS hist
        CROSS JOIN params
        WHERE hist.snapshot_at = params.carried_at
    ) AS steps
    GROUP BY user_id, step_at
),
snapshots AS MATERIALIZED (
    -- The snapshots computed: month starts from snapshot_from up to as_of, and as_of.
    SELECT month_start AS snapshot_at
    FROM params
    CROSS JOIN LATERAL generate_series(
        CASE WHEN params.snapshot_from = date_trunc('month', params.snapshot_from) THEN params.snapshot_from
             ELSE date_trunc('month', params.snapshot_from) + interval '1 month' END,
        params.as_of, interval '1 month') AS month_start
    UNION
    SELECT params.as_of FROM params
),
running AS (
    SELECT user_id,
           step_at,
           LEAD(step_at) OVER per_user AS next_step_at,
           MAX(last_payment_date) OVER per_user AS max_payment_date,
           CAST(SUM(payments) OVER per_user AS integer) AS frequency,
           SUM(amount) OVER per_user AS monetary
    FROM user_steps
    WINDOW per_user AS (PARTITION BY user_id ORDER BY step_at ROWS UNBOUNDED PRECEDING)
)
-- Only a few snapshots are computed, so each running total joins the list of them (rather than generating
-- a series per row as the full model does).
SELECT running.user_id,
       snapshots.snapshot_at,
       running.max_payment_date,
       running.frequency,
       running.monetary
FROM running
JOIN snapshots
  ON snapshots.snapshot_at >= running.step_at
 AND (running.next_step_at IS NULL OR snapshots.snapshot_at < running.next_step_at)
