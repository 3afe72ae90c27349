-- A complaint number is `RD<day>-` and the sequence, at least six digits. It was
-- `lpad(n, 6, '0')`, and `lpad` cuts what is longer: from the millionth complaint on, numbers
-- were cut to six digits, collided with earlier ones of the same day and the submissions were
-- dead-lettered (found filling a benchmark with a million complaints). `nextval` is passed in,
-- so it is called once per row.
CREATE FUNCTION complaint_number(prefix TEXT, n BIGINT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT prefix || lpad(n::text, greatest(6, length(n::text)), '0')
$$;
