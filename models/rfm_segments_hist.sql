{{ config(materialized='table') }}
-- RFM segment history: one row per user per snapshot instant, scored against the other users of the same
-- snapshot. The values come from rfm_values_hist (snapshot semantics are described there and in
-- docs/models.md). segsync materialises this table itself, with the key (snapshot_at, user_id).
WITH rfm_percentiles AS (
    SELECT user_id,
           snapshot_at,
           max_payment_date,
           snapshot_at - max_payment_date AS recency,
           frequency,
           monetary,
           -- Partitioned by snapshot: the seed ranked every month against every other month. Within one
           -- snapshot, recency DESC is max_payment_date ASC (same order, same ties), and cheaper to sort.
           PERCENT_RANK() OVER (PARTITION BY snapshot_at ORDER BY max_payment_date ASC) AS recency_percentile,
           PERCENT_RANK() OVER (PARTITION BY snapshot_at ORDER BY frequency ASC) AS frequency_percentile,
           PERCENT_RANK() OVER (PARTITION BY snapshot_at ORDER BY monetary ASC) AS monetary_percentile
    FROM {{ ref('rfm_values_hist') }}
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
