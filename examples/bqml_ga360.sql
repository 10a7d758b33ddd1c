-- Google's "How to build k-means clustering models for market segmentation using BigQuery ML"
-- (GoogleCloudPlatform/analytics-componentized-patterns, retail/clustering/bqml), statement by
-- statement, run locally: segmint sql -f examples/bqml_ga360.sql
-- Unchanged except: the dataset is bqml_kmeans without a project, the date range is the one day
-- in ../shared/data ('20170801'), the notebook's Python loops are written out, and the GA360
-- export is registered first (BigQuery reads it from its public project; here it is a file).

-- The GA360 export: one file per day, as the wildcard table ga_sessions_* (paths are taken
-- from this script's folder).
CREATE OR REPLACE EXTERNAL TABLE `bigquery-public-data.google_analytics_sample.ga_sessions_*`
OPTIONS (format = 'PARQUET', uris = ['../../shared/data/ga360_sessions_*.parquet']);

-- GA360_View: per visitor, product-category event counts, OS and the price of the products seen
CREATE OR REPLACE VIEW bqml_kmeans.GA360_View AS
SELECT
  fullVisitorID,
  ABS(farm_fingerprint(fullVisitorID)) AS Hashed_fullVisitorID, # This will be used to generate random data.
  MAX(device.operatingSystem) AS OS, # We can aggregate this because an OS is tied to a fullVisitorID.
  SUM (CASE
      WHEN REGEXP_EXTRACT (v2ProductCategory,
                           r'^(?:(?:.*?)Home/)(.*?)/') = 'Apparel' THEN 1
    ELSE
    0
  END
    ) AS Apparel,
  SUM (CASE
      WHEN REGEXP_EXTRACT (v2ProductCategory,
                           r'^(?:(?:.*?)Home/)(.*?)/') = 'Office' THEN 1
    ELSE
    0
  END
    ) AS Office,
  SUM (CASE
      WHEN REGEXP_EXTRACT (v2ProductCategory,
                           r'^(?:(?:.*?)Home/)(.*?)/') = 'Electronics' THEN 1
    ELSE
    0
  END
    ) AS Electronics,
  SUM (CASE
      WHEN REGEXP_EXTRACT (v2ProductCategory,
                           r'^(?:(?:.*?)Home/)(.*?)/') = 'Limited Supply' THEN 1
    ELSE
    0
  END
    ) AS LimitedSupply,
  SUM (CASE
      WHEN REGEXP_EXTRACT (v2ProductCategory,
                           r'^(?:(?:.*?)Home/)(.*?)/') = 'Accessories' THEN 1
    ELSE
    0
  END
    ) AS Accessories,
  SUM (CASE
      WHEN REGEXP_EXTRACT (v2ProductCategory,
                           r'^(?:(?:.*?)Home/)(.*?)/') = 'Shop by Brand' THEN 1
    ELSE
    0
  END
    ) AS ShopByBrand,
  SUM (CASE
      WHEN REGEXP_EXTRACT (v2ProductCategory,
                           r'^(?:(?:.*?)Home/)(.*?)/') = 'Bags' THEN 1
    ELSE
    0
  END
    ) AS Bags,
  ROUND (SUM (productPrice/1000000),2) AS productPrice_USD
FROM
  `bigquery-public-data.google_analytics_sample.ga_sessions_*`,
  UNNEST(hits) AS hits,
  UNNEST(hits.product) AS hits_product
WHERE
  _TABLE_SUFFIX BETWEEN '20170801'
  AND '20170801'
  AND geoNetwork.country = 'United States'
  AND type = 'EVENT'
GROUP BY
  1,
  2;

SELECT * FROM bqml_kmeans.GA360_View LIMIT 5;

-- CRM_View: synthetic CRM data from a hash of the visitor id (gender, household income)
CREATE OR REPLACE VIEW bqml_kmeans.CRM_View AS
SELECT
  fullVisitorID,
IF
  (MOD(Hashed_fullVisitorID,2) = 0,
    "M",
    "F") AS gender,
  CASE
    WHEN MOD(Hashed_fullVisitorID,10) = 0 THEN 55000
    WHEN MOD(Hashed_fullVisitorID,10) < 3 THEN 65000
    WHEN MOD(Hashed_fullVisitorID,10) < 7 THEN 75000
    WHEN MOD(Hashed_fullVisitorID,10) < 9 THEN 85000
    WHEN MOD(Hashed_fullVisitorID,10) = 9 THEN 95000
  ELSE
  Hashed_fullVisitorID
END
  AS hhi
FROM (
  SELECT
    fullVisitorID,
    ABS(farm_fingerprint(fullVisitorID)) AS Hashed_fullVisitorID,
  FROM
    `bigquery-public-data.google_analytics_sample.ga_sessions_*`,
    UNNEST(hits) AS hits,
    UNNEST(hits.product) AS hits_product
  WHERE
    _TABLE_SUFFIX BETWEEN '20170801'
    AND '20170801'
    AND geoNetwork.country = 'United States'
    AND type = 'EVENT'
  GROUP BY
    1,
    2);

SELECT * FROM bqml_kmeans.CRM_View LIMIT 5;

-- Final_View: GA360 joined with CRM, the training data
CREATE OR REPLACE VIEW bqml_kmeans.Final_View AS
SELECT
    g.*,
    c.* EXCEPT(fullVisitorId)
FROM bqml_kmeans.GA360_View g
JOIN bqml_kmeans.CRM_View c
ON g.fullVisitorId = c.fullVisitorId;

SELECT * FROM bqml_kmeans.Final_View LIMIT 5;

-- a first model, to see that everything works; then removed
CREATE OR REPLACE MODEL
`bqml_kmeans.test` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=3) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

DROP MODEL bqml_kmeans.test;

-- one model per k = 3..15 (the notebook's makeModel loop)
CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_3` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=3) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_4` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=4) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_5` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=5) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_6` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=6) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_7` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=7) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_8` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=8) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_9` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=9) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_10` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=10) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_11` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=11) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_12` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=12) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_13` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=13) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_14` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=14) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

CREATE OR REPLACE MODEL
`bqml_kmeans.kmeans_clusters_15` OPTIONS(model_type='kmeans',
                            kmeans_init_method = 'KMEANS++',
                            num_clusters=15) AS
SELECT * except(fullVisitorID, Hashed_fullVisitorID) FROM `bqml_kmeans.Final_View`;

-- Davies-Bouldin and mean squared distance by k (the notebook collects ML.EVALUATE per model)
SELECT 'kmeans_clusters_3' AS model_name, 3 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_3`)
UNION ALL
SELECT 'kmeans_clusters_4' AS model_name, 4 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_4`)
UNION ALL
SELECT 'kmeans_clusters_5' AS model_name, 5 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_5`)
UNION ALL
SELECT 'kmeans_clusters_6' AS model_name, 6 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_6`)
UNION ALL
SELECT 'kmeans_clusters_7' AS model_name, 7 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_7`)
UNION ALL
SELECT 'kmeans_clusters_8' AS model_name, 8 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_8`)
UNION ALL
SELECT 'kmeans_clusters_9' AS model_name, 9 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_9`)
UNION ALL
SELECT 'kmeans_clusters_10' AS model_name, 10 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_10`)
UNION ALL
SELECT 'kmeans_clusters_11' AS model_name, 11 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_11`)
UNION ALL
SELECT 'kmeans_clusters_12' AS model_name, 12 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_12`)
UNION ALL
SELECT 'kmeans_clusters_13' AS model_name, 13 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_13`)
UNION ALL
SELECT 'kmeans_clusters_14' AS model_name, 14 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_14`)
UNION ALL
SELECT 'kmeans_clusters_15' AS model_name, 15 AS n_clusters, davies_bouldin_index, mean_squared_distance
FROM ML.EVALUATE(MODEL `bqml_kmeans.kmeans_clusters_15`)
ORDER BY n_clusters;

-- the categorical centroids of the chosen model
SELECT
  centroid_id,
  feature,
  categorical_value
FROM
  ML.CENTROIDS(MODEL bqml_kmeans.kmeans_clusters_5)
WHERE
  feature IN ('OS','gender');

-- the numerical centroids, one column per feature, with the number of visitors in each cluster
WITH T AS (
SELECT
  centroid_id,
  ARRAY_AGG(STRUCT(feature AS name,
                   ROUND(numerical_value,1) AS value)
                   ORDER BY centroid_id)
                   AS cluster
FROM ML.CENTROIDS(MODEL bqml_kmeans.kmeans_clusters_5)
GROUP BY centroid_id
),

Users AS(
SELECT
  centroid_id,
  COUNT(*) AS Total_Users
FROM(
SELECT
  * EXCEPT(nearest_centroids_distance)
FROM
  ML.PREDICT(MODEL bqml_kmeans.kmeans_clusters_5,
    (
    SELECT
      *
    FROM
      bqml_kmeans.Final_View
      )))
GROUP BY centroid_id
)

SELECT
  centroid_id,
  Total_Users,
  (SELECT value from unnest(cluster) WHERE name = 'Apparel') AS Apparel,
  (SELECT value from unnest(cluster) WHERE name = 'Office') AS Office,
  (SELECT value from unnest(cluster) WHERE name = 'Electronics') AS Electronics,
  (SELECT value from unnest(cluster) WHERE name = 'LimitedSupply') AS LimitedSupply,
  (SELECT value from unnest(cluster) WHERE name = 'Accessories') AS Accessories,
  (SELECT value from unnest(cluster) WHERE name = 'ShopByBrand') AS ShopByBrand,
  (SELECT value from unnest(cluster) WHERE name = 'Bags') AS Bags,
  (SELECT value from unnest(cluster) WHERE name = 'Total_Purchases') AS Total_Purchases,
  (SELECT value from unnest(cluster) WHERE name = 'productPrice_USD') AS productPrice_USD,
  (SELECT value from unnest(cluster) WHERE name = 'hhi') AS hhi

FROM T LEFT JOIN Users USING(centroid_id)
ORDER BY centroid_id ASC;

-- score visitors: the cluster of one visitor (the notebook's final ML.PREDICT)
SELECT * EXCEPT(nearest_centroids_distance)
FROM
  ML.PREDICT(MODEL bqml_kmeans.kmeans_clusters_5,
    (
    SELECT
      *
    FROM
      bqml_kmeans.Final_View
      LIMIT 1));
