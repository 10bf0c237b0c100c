{{ config(materialized='table') }}
-- RFM segment history: one row per user per snapshot instant. See docs/models.md.
--
-- Snapshot instants: every month start (session time zone; segsync runs in UTC) at or before the as-of
-- instant, plus the as-of instant itself. A row at `snapshot_at` is the state AT that instant: the row at
-- 2023-04-01 00:00 sees payments up to and including 2023-04-01 00:00, i.e. the end of March.
-- A user appears in a snapshot once they have a payment at or before it.
--
-- Variables (dbt: --vars '{as_of: "2011-12-11 00:00"}'; segsync passes them itself):
--   as_of          the "current" instant (default: now)
--   snapshot_from  compute only snapshots at or after this instant (default: all). segsync uses it to
--                  recompute only the snapshots that can change; a plain dbt table build leaves it alone.
--
-- Instead of joining every payment to every later month (P x M rows), payments are summed per user per
-- "step" (the first snapshot that sees them) and running totals are taken over a user x snapshot spine.
WITH params AS (
    SELECT CAST('{{ var("as_of", "now") }}' AS timestamptz) AS as_of,
           CAST('{{ var("snapshot_from", "-infinity") }}' AS timestamptz) AS snapshot_from
),
payments AS (
    -- A payment_id is one payment, however often it was loaded: the earliest row wins.
    SELECT DISTINCT ON (p.payment_id)
           CAST(p.user_id AS text) AS user_id,
           CAST(p.payment_date AS timestamptz) AS payment_date,
           CAST(p.payment_amount AS numeric) AS payment_amount
    FROM {{ ref('fact_payments') }} AS p
    CROSS JOIN params
    WHERE CAST(p.payment_date AS timestamptz) <= params.as_of
    ORDER BY p.payment_id, CAST(p.payment_date AS timestamptz), CAST(p.user_id AS text), CAST(p.payment_amount AS numeric)
),
stepped AS (
    -- The first snapshot instant that sees a payment: the next month start at or after it, or as_of.
    SELECT pay.user_id, pay.payment_date, pay.payment_amount,
           LEAST(
               CASE WHEN pay.payment_date = date_trunc('month', pay.payment_date) THEN pay.payment_date
                    ELSE date_trunc('month', pay.payment_date) + interval '1 month' END,
               params.as_of) AS first_seen_at
    FROM payments AS pay
    CROSS JOIN params
),
bounds AS (
    -- The first snapshot to compute: the first snapshot instant at or after both the earliest payment's
    -- first snapshot and snapshot_from.
    SELECT params.as_of,
           LEAST(
               CASE WHEN lower_bound = date_trunc('month', lower_bound) THEN lower_bound
                    ELSE date_trunc('month', lower_bound) + interval '1 month' END,
               params.as_of) AS first_snapshot
    FROM (SELECT GREATEST(MIN(first_seen_at), MAX(params.snapshot_from)) AS lower_bound
          FROM stepped CROSS JOIN params
          HAVING COUNT(*) > 0) AS lowest
    CROSS JOIN params
    WHERE lowest.lower_bound <= params.as_of
),
snapshots AS (
    SELECT month_start AS snapshot_at
    FROM bounds
    CROSS JOIN LATERAL generate_series(bounds.first_snapshot, bounds.as_of, interval '1 month') AS month_start
    UNION
    SELECT bounds.as_of FROM bounds
),
user_steps AS (
    -- Payments before the first computed snapshot collapse into it: history already computed stays put.
    SELECT stepped.user_id,
           GREATEST(stepped.first_seen_at, bounds.first_snapshot) AS snapshot_at,
           COUNT(*) AS payments,
           SUM(stepped.payment_amount) AS amount,
           MAX(stepped.payment_date) AS last_payment_date
    FROM stepped
    CROSS JOIN bounds
    GROUP BY 1, 2
),
spine AS (
    SELECT first_steps.user_id, snapshots.snapshot_at
    FROM (SELECT user_id, MIN(snapshot_at) AS first_snapshot FROM user_steps GROUP BY user_id) AS first_steps
    JOIN snapshots ON snapshots.snapshot_at >= first_steps.first_snapshot
),
rfm_values AS (
    SELECT spine.user_id,
           spine.snapshot_at,
           MAX(user_steps.last_payment_date) OVER running AS max_payment_date,
           SUM(COALESCE(user_steps.payments, 0)) OVER running AS frequency,
           SUM(COALESCE(user_steps.amount, 0)) OVER running AS monetary
    FROM spine
    LEFT JOIN user_steps
           ON user_steps.user_id = spine.user_id AND user_steps.snapshot_at = spine.snapshot_at
    WINDOW running AS (PARTITION BY spine.user_id ORDER BY spine.snapshot_at ROWS UNBOUNDED PRECEDING)
),
rfm_percentiles AS (
    -- Users are ranked against the other users of the same snapshot only.
    SELECT rfm_values.*,
           rfm_values.snapshot_at - rfm_values.max_payment_date AS recency,
           PERCENT_RANK() OVER (PARTITION BY rfm_values.snapshot_at
                                ORDER BY rfm_values.snapshot_at - rfm_values.max_payment_date DESC) AS recency_percentile,
           PERCENT_RANK() OVER (PARTITION BY rfm_values.snapshot_at ORDER BY rfm_values.frequency ASC) AS frequency_percentile,
           PERCENT_RANK() OVER (PARTITION BY rfm_values.snapshot_at ORDER BY rfm_values.monetary ASC) AS monetary_percentile
    FROM rfm_values
),
rfm_scores AS (
    SELECT rfm_percentiles.*,
           CASE WHEN recency_percentile >= 0.8 THEN 5
                WHEN recency_percentile >= 0.6 THEN 4
                WHEN recency_percentile >= 0.4 THEN 3
                WHEN recency_percentile >= 0.2 THEN 2
                ELSE 1 END AS recency_score,
           CASE WHEN frequency_percentile >= 0.8 THEN 5
                WHEN frequency_percentile >= 0.6 THEN 4
                WHEN frequency_percentile >= 0.4 THEN 3
                WHEN frequency_percentile >= 0.2 THEN 2
                ELSE 1 END AS frequency_score,
           CASE WHEN monetary_percentile >= 0.8 THEN 5
                WHEN monetary_percentile >= 0.6 THEN 4
                WHEN monetary_percentile >= 0.4 THEN 3
                WHEN monetary_percentile >= 0.2 THEN 2
                ELSE 1 END AS monetary_score
    FROM rfm_percentiles
)
SELECT user_id,
       snapshot_at,
       max_payment_date,
       recency,
       CAST(FLOOR(EXTRACT(EPOCH FROM recency) / 86400) AS integer) AS recency_days,
       CAST(frequency AS integer) AS frequency,
       monetary,
       recency_percentile,
       frequency_percentile,
       monetary_percentile,
       recency_score,
       frequency_score,
       monetary_score,
       -- First match wins, in exactly this order (r = 3 with f >= 4 lands in Loyal Customers).
       CASE WHEN recency_score <= 2 AND frequency_score <= 2 THEN 'Hibernating'
            WHEN recency_score <= 2 AND frequency_score <= 4 THEN 'At Risk'
            WHEN recency_score <= 2 AND frequency_score <= 5 THEN 'Cannot Lose Them'
            WHEN recency_score <= 3 AND frequency_score <= 2 THEN 'About to Sleep'
            WHEN recency_score <= 3 AND frequency_score <= 3 THEN 'Need Attention'
            WHEN recency_score <= 4 AND frequency_score <= 1 THEN 'Promising'
            WHEN recency_score <= 4 AND frequency_score <= 3 THEN 'Potential Loyalists'
            WHEN recency_score <= 4 AND frequency_score <= 5 THEN 'Loyal Customers'
            WHEN recency_score <= 5 AND frequency_score <= 1 THEN 'New Customers'
            WHEN recency_score <= 5 AND frequency_score <= 3 THEN 'Potential Loyalists'
            ELSE 'Champions' END AS rfm_segment
FROM rfm_scores
