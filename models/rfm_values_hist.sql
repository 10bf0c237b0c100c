{{ config(materialized='ephemeral') }}
-- RFM values per user per snapshot instant (no scores yet): the input of rfm_segments_hist. See docs/models.md.
--
-- Snapshot instants: every month start (session time zone; segsync runs in UTC) at or before the as-of
-- instant, plus the as-of instant itself. A row at `snapshot_at` is the state AT that instant: the row at
-- 2023-04-01 00:00 sees payments up to and including 2023-04-01 00:00, i.e. the end of March.
-- A user appears in a snapshot once they have a payment at or before it.
--
-- Variables (dbt: --vars '{as_of: "2011-12-11 00:00"}'; segsync passes them itself):
--   as_of                   the "current" instant (default: now)
--   payment_ids_may_repeat  false skips the duplicate-payment sort when payment_id is a unique key
--
-- Instead of joining every payment to every later month (P x M rows), payments are summed per user per
-- "step" (the first snapshot that sees them), running totals are taken per user over their steps, and each
-- running total is spread over the snapshots until the user's next step. Snapshots without any user (before
-- the first payment) have no rows, as in the seed's inner join.
WITH params AS (
    SELECT CAST('{{ var("as_of", "now") }}' AS timestamptz) AS as_of
),
payments AS (
    -- A payment_id is one payment, however often it was loaded: the earliest row wins.
    (SELECT DISTINCT ON (CAST(p.payment_id AS text))
            CAST(p.user_id AS text) AS user_id,
            CAST(p.payment_date AS timestamptz) AS payment_date,
            CAST(p.payment_amount AS numeric) AS payment_amount
     FROM {{ ref('fact_payments') }} AS p
     CROSS JOIN params
     WHERE {{ var("payment_ids_may_repeat", "true") }}
       AND CAST(p.payment_date AS timestamptz) <= params.as_of
     ORDER BY CAST(p.payment_id AS text), CAST(p.payment_date AS timestamptz), CAST(p.user_id AS text), CAST(p.payment_amount AS numeric))
    UNION ALL
    -- With a unique key on payment_id there is nothing to sort out (segsync sets the variable to false then).
    (SELECT CAST(p.user_id AS text), CAST(p.payment_date AS timestamptz), CAST(p.payment_amount AS numeric)
     FROM {{ ref('fact_payments') }} AS p
     CROSS JOIN params
     WHERE NOT {{ var("payment_ids_may_repeat", "true") }}
       AND CAST(p.payment_date AS timestamptz) <= params.as_of)
),
user_steps AS (
    -- The first snapshot that sees a payment: the next month start at or after it, or as_of.
    SELECT payments.user_id,
           LEAST(
               CASE WHEN payments.payment_date = date_trunc('month', payments.payment_date) THEN payments.payment_date
                    ELSE date_trunc('month', payments.payment_date) + interval '1 month' END,
               params.as_of) AS step_at,
           COUNT(*) AS payments,
           SUM(payments.payment_amount) AS amount,
           MAX(payments.payment_date) AS last_payment_date
    FROM payments
    CROSS JOIN params
    GROUP BY 1, 2
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
-- Each running total holds from its step until the user's next step: spread it over those month starts, and
-- over as_of for the user's last step.
SELECT running.user_id,
       spread.snapshot_at,
       running.max_payment_date,
       running.frequency,
       running.monetary
FROM running
CROSS JOIN params
CROSS JOIN LATERAL (
    SELECT month_start
    FROM generate_series(running.step_at,
                         COALESCE(running.next_step_at - interval '1 microsecond', params.as_of),
                         interval '1 month') AS month_start
    WHERE running.step_at = date_trunc('month', running.step_at)
    UNION ALL
    SELECT params.as_of
    WHERE running.next_step_at IS NULL AND params.as_of <> date_trunc('month', params.as_of)
) AS spread (snapshot_at)
