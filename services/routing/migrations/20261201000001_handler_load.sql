-- Open load per handler and class, kept by the database in the same transaction as every
-- change to a handling row (assign, reassign, reroute, reclassify, resolve, close, reopen), so
-- choosing a handler reads a few counter rows instead of summing every open complaint of the
-- department: the cost of an assignment no longer grows with the backlog (issue 18, ADR 0024).
-- The weights stay in the service's settings: the counters are per class, unweighted.
CREATE TABLE handler_load (
    staff_id    TEXT   NOT NULL,
    class       TEXT   NOT NULL,
    open_count  BIGINT NOT NULL,
    PRIMARY KEY (staff_id, class)
);

INSERT INTO handler_load (staff_id, class, open_count)
SELECT assignee_id, class, count(*) FROM handling
WHERE open AND assignee_id <> ''
GROUP BY assignee_id, class;

-- `SET search_path FROM CURRENT`: the counters are found whoever updates `handling` (a
-- service's pooled connection or an operator's psql session).
CREATE FUNCTION handling_keeps_load() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.open AND OLD.assignee_id <> '' THEN
        UPDATE handler_load SET open_count = open_count - 1
        WHERE staff_id = OLD.assignee_id AND class = OLD.class;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.open AND NEW.assignee_id <> '' THEN
        INSERT INTO handler_load (staff_id, class, open_count)
        VALUES (NEW.assignee_id, NEW.class, 1)
        ON CONFLICT (staff_id, class)
        DO UPDATE SET open_count = handler_load.open_count + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER handling_load_insert AFTER INSERT ON handling
    FOR EACH ROW WHEN (NEW.open AND NEW.assignee_id <> '')
    EXECUTE FUNCTION handling_keeps_load();

CREATE TRIGGER handling_load_update AFTER UPDATE OF open, assignee_id, class ON handling
    FOR EACH ROW
    WHEN ((OLD.open, OLD.assignee_id, OLD.class) IS DISTINCT FROM (NEW.open, NEW.assignee_id, NEW.class))
    EXECUTE FUNCTION handling_keeps_load();

CREATE TRIGGER handling_load_delete AFTER DELETE ON handling
    FOR EACH ROW WHEN (OLD.open AND OLD.assignee_id <> '')
    EXECUTE FUNCTION handling_keeps_load();
