-- The timed part of the sqlite3 workload of scripts/bench: queries over the
-- database that sqlite_gen.sql builds, opened read-only, with a large page
-- cache and temporary tables in memory.  Sorting, grouping, joins, window
-- functions, string and JSON building: all of them allocate.  The output
-- does not depend on the allocator.
PRAGMA cache_size = -65536;
PRAGMA temp_store = MEMORY;
CREATE TEMP TABLE per_customer AS
  SELECT customer, sum(amount) AS total, count(*) AS n FROM orders GROUP BY customer;
CREATE INDEX temp.per_customer_total ON per_customer(total);
SELECT count(*), sum(total), max(n) FROM per_customer;
SELECT c.city, count(*), sum(o.amount)
  FROM orders o JOIN customers c ON c.id = o.customer
  GROUP BY c.city ORDER BY 3 DESC, 1 LIMIT 5;
SELECT id, note, amount FROM orders ORDER BY note, amount DESC, id LIMIT 5;
SELECT count(DISTINCT note), count(DISTINCT amount % 1000) FROM orders;
SELECT sum(delta) FROM (
  SELECT amount - lag(amount, 1, 0) OVER (PARTITION BY customer ORDER BY day, id) AS delta
  FROM orders);
SELECT length(group_concat(name, ',')) FROM (SELECT name FROM customers ORDER BY name DESC);
SELECT count(*), sum(length(j)) FROM (
  SELECT json_object('id', id, 'note', note, 'parts', json_array(customer, amount, day)) AS j
  FROM orders)
  WHERE json_extract(j, '$.parts[1]') % 3 = 0;
SELECT p.customer, p.total, c.name
  FROM per_customer p JOIN customers c ON c.id = p.customer
  ORDER BY p.total DESC, p.customer LIMIT 3;
