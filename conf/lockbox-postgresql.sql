-- SPDX-License-Identifier: LGPL-2.1-or-later
-- pam_lockbox fleet store (SPEC §10): the requests every host of one tenant shares.
--
-- Apply once, as the database's owner, to a database of its own:
--     psql -v ON_ERROR_STOP=1 -d lockbox -f lockbox-postgresql.sql
-- then give each host a login role of its own, authenticated by its TLS client certificate:
--     CREATE ROLE "web1.contoso" LOGIN IN ROLE lockbox_host;   -- a gated host
--     CREATE ROLE "desk.contoso" LOGIN IN ROLE lockbox_desk;   -- where people decide
--
-- Hosts get no privilege on any table. Everything they may do is one of the functions
-- below, each checking its own rules, so the database itself refuses a decision from a
-- lockbox_host role whatever client it uses. Times are the database's clock (seconds since
-- the epoch, UTC): deadlines never depend on a host's clock.
--
-- Writers serialise on one advisory lock, so revisions are committed in the order they are
-- handed out: a host that has read everything up to revision N has missed nothing below N.
-- Every change sends NOTIFY lockbox_changed; it only wakes hosts, which read the rows back.
--
-- Schema versions: lockbox.schema_version holds the version this file creates. A later
-- release appends a step guarded by the version it upgrades from; lockboxd refuses a
-- database whose version it does not know.

BEGIN;

DO $$
BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lockbox_host') THEN
                CREATE ROLE lockbox_host NOLOGIN;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lockbox_desk') THEN
                CREATE ROLE lockbox_desk NOLOGIN IN ROLE lockbox_host;
        END IF;
END
$$;

CREATE SCHEMA lockbox;
REVOKE ALL ON SCHEMA lockbox FROM PUBLIC;
GRANT USAGE ON SCHEMA lockbox TO lockbox_host;

CREATE TABLE lockbox.schema_version (version integer NOT NULL);
INSERT INTO lockbox.schema_version VALUES (1);

-- What lockboxd checks first: the schema it talks to is one it knows.
CREATE FUNCTION lockbox.version() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$ SELECT max(version) FROM schema_version $$;

CREATE SEQUENCE lockbox.revision;

CREATE TABLE lockbox.requests (
        id            text    NOT NULL PRIMARY KEY CHECK (id ~ '^[0-9a-f-]{36}$'),
        tenant        text    NOT NULL CHECK (length(tenant) BETWEEN 1 AND 64),
        requester     text    NOT NULL CHECK (length(requester) BETWEEN 1 AND 256),
        requester_uid bigint  NOT NULL CHECK (requester_uid BETWEEN 0 AND 4294967294),
        ticket        text    NOT NULL CHECK (length(ticket) BETWEEN 1 AND 128),
        reason        text    NOT NULL CHECK (length(reason) BETWEEN 1 AND 1024),
        duration      bigint  NOT NULL CHECK (duration > 0),
        state         text    NOT NULL CHECK (state IN ('pending-manager', 'pending', 'approved', 'denied',
                                                        'cancelled', 'expired', 'ended', 'revoked')),
        created_at    bigint  NOT NULL CHECK (created_at > 0),
        decided_at    bigint  CHECK (decided_at > 0),
        manager       text    CHECK (length(manager) BETWEEN 1 AND 256),
        approver      text    CHECK (length(approver) BETWEEN 1 AND 256),
        comment       text    CHECK (length(comment) <= 1024),
        expires_at    bigint  CHECK (expires_at > 0),
        revision      bigint  NOT NULL,
        withdrawn     boolean NOT NULL DEFAULT false,   -- a filing taken back: hosts drop it
        filed_by      name    NOT NULL,                 -- the host role that filed it
        decided_by    name,                             -- the desk role of the last decision
        CHECK (state <> 'approved' OR expires_at IS NOT NULL),
        CHECK (expires_at IS NULL OR expires_at <= decided_at + duration),
        -- Nobody decides on their own request; manager and approver are two people.
        CHECK (manager IS DISTINCT FROM requester AND approver IS DISTINCT FROM requester),
        CHECK (manager IS NULL OR approver IS NULL OR manager <> approver)
);
CREATE INDEX requests_revision ON lockbox.requests (revision);
REVOKE ALL ON lockbox.requests FROM PUBLIC;
REVOKE ALL ON lockbox.schema_version FROM PUBLIC;
REVOKE ALL ON SEQUENCE lockbox.revision FROM PUBLIC;

-- The writes that were applied, by the random id their host gave them: a host that lost the
-- answer to a write (connection cut) asks here, once reconnected, whether it was applied, so
-- that an applied change is audited even then, and once.
CREATE TABLE lockbox.ops (
        op_id      text        NOT NULL PRIMARY KEY CHECK (op_id ~ '^[0-9a-f-]{36}$'),
        request_id text        NOT NULL,
        host       name        NOT NULL,
        at         timestamptz NOT NULL DEFAULT statement_timestamp()
);
REVOKE ALL ON lockbox.ops FROM PUBLIC;

-- What every function returns: whether it changed the row, and the row as it now is.
CREATE TYPE lockbox.row AS (
        applied       boolean,
        db_now        double precision,
        id            text,
        tenant        text,
        requester     text,
        requester_uid bigint,
        ticket        text,
        reason        text,
        duration      bigint,
        state         text,
        created_at    bigint,
        decided_at    bigint,
        manager       text,
        approver      text,
        comment       text,
        expires_at    bigint,
        revision      bigint,
        withdrawn     boolean
);

CREATE FUNCTION lockbox.now_seconds() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT floor(extract(epoch FROM statement_timestamp()))::bigint $$;

CREATE FUNCTION lockbox.row_of(applied boolean, r lockbox.requests) RETURNS lockbox.row
LANGUAGE sql STABLE AS $$
        SELECT applied, extract(epoch FROM statement_timestamp())::double precision,
               r.id, r.tenant, r.requester, r.requester_uid, r.ticket, r.reason, r.duration,
               r.state, r.created_at, r.decided_at, r.manager, r.approver, r.comment,
               r.expires_at, r.revision, r.withdrawn
$$;

-- A write that did not apply answers with the row as it is (none if there is none).
CREATE FUNCTION lockbox.unchanged(p_id text) RETURNS SETOF lockbox.row
LANGUAGE sql STABLE AS $$
        SELECT (lockbox.row_of(false, r)).* FROM lockbox.requests r WHERE r.id = p_id AND NOT r.withdrawn
$$;

CREATE FUNCTION lockbox.lock_writers() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(7366776300001) $$;

CREATE FUNCTION lockbox.changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
        PERFORM pg_notify('lockbox_changed', '');
        RETURN NULL;
END
$$;
CREATE TRIGGER requests_changed AFTER INSERT OR UPDATE OR DELETE ON lockbox.requests
        FOR EACH STATEMENT EXECUTE FUNCTION lockbox.changed();

-- The rows changed after revision since, in revision order (a host's view catches up), led
-- by one row with only the database's clock (the heartbeat and the clock check).
CREATE FUNCTION lockbox.view(since bigint) RETURNS SETOF lockbox.row
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
        SELECT NULL::boolean, extract(epoch FROM statement_timestamp())::double precision,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL
        UNION ALL
        (SELECT (lockbox.row_of(NULL, r)).* FROM lockbox.requests r
          WHERE r.revision > since ORDER BY r.revision)
$$;

-- A host files a request for one of its operators, undecided; the database dates it.
CREATE FUNCTION lockbox.file(p_id text, p_tenant text, p_requester text, p_requester_uid bigint,
                             p_ticket text, p_reason text, p_duration bigint, p_state text, p_op text)
RETURNS SETOF lockbox.row
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
DECLARE
        r requests;
BEGIN
        IF p_state NOT IN ('pending-manager', 'pending') THEN
                RAISE EXCEPTION 'a request is filed undecided, not %', p_state
                        USING ERRCODE = 'check_violation';
        END IF;
        PERFORM lock_writers();
        INSERT INTO requests (id, tenant, requester, requester_uid, ticket, reason, duration, state,
                              created_at, revision, filed_by)
        VALUES (p_id, p_tenant, p_requester, p_requester_uid, p_ticket, p_reason, p_duration, p_state,
                now_seconds(), nextval('revision'), session_user)
        RETURNING * INTO r;
        INSERT INTO ops (op_id, request_id, host) VALUES (p_op, r.id, session_user);
        RETURN NEXT row_of(true, r);
END
$$;

-- Takes back a filing whose audit entry could not be written: only the host that filed it,
-- and only while nobody has decided on it.
CREATE FUNCTION lockbox.withdraw(p_id text, p_op text) RETURNS SETOF lockbox.row
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
DECLARE
        r requests;
BEGIN
        PERFORM lock_writers();
        UPDATE requests SET withdrawn = true, revision = nextval('revision')
         WHERE id = p_id AND filed_by = session_user AND NOT withdrawn
           AND state IN ('pending-manager', 'pending') AND decided_at IS NULL
        RETURNING * INTO r;
        IF FOUND THEN
                INSERT INTO ops (op_id, request_id, host) VALUES (p_op, r.id, session_user);
        RETURN NEXT row_of(true, r);
                RETURN;
        END IF;
        RETURN QUERY SELECT * FROM unchanged(p_id);
END
$$;

-- Time moves a request on: undecided past request_timeout seconds → expired, a grant past
-- its end → ended. Only when it is due by the database's clock, and only from the state the
-- caller saw: of hosts racing to settle, one applies it.
CREATE FUNCTION lockbox.settle(p_id text, p_expected text, p_request_timeout bigint, p_op text)
RETURNS SETOF lockbox.row
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
DECLARE
        r requests;
        now bigint := now_seconds();
BEGIN
        IF p_request_timeout IS NULL OR p_request_timeout < 1 THEN
                RAISE EXCEPTION 'request_timeout must be positive' USING ERRCODE = 'check_violation';
        END IF;
        PERFORM lock_writers();
        UPDATE requests
           SET state = CASE WHEN state = 'approved' THEN 'ended' ELSE 'expired' END,
               revision = nextval('revision')
         WHERE id = p_id AND state = p_expected AND NOT withdrawn
           AND ((state IN ('pending-manager', 'pending') AND created_at + p_request_timeout <= now)
                OR (state = 'approved' AND expires_at <= now))
        RETURNING * INTO r;
        IF FOUND THEN
                INSERT INTO ops (op_id, request_id, host) VALUES (p_op, r.id, session_user);
        RETURN NEXT row_of(true, r);
                RETURN;
        END IF;
        RETURN QUERY SELECT * FROM unchanged(p_id);
END
$$;

-- An operator ends their own grant early (`lockbox done`), on any host: ending access never
-- extends it. Only an approved grant still running, only for its requester.
CREATE FUNCTION lockbox.finish(p_id text, p_requester text, p_op text) RETURNS SETOF lockbox.row
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
DECLARE
        r requests;
        now bigint := now_seconds();
BEGIN
        PERFORM lock_writers();
        UPDATE requests SET state = 'ended', expires_at = now, decided_by = session_user, revision = nextval('revision')
         WHERE id = p_id AND requester = p_requester AND state = 'approved' AND expires_at > now AND NOT withdrawn
        RETURNING * INTO r;
        IF FOUND THEN
                INSERT INTO ops (op_id, request_id, host) VALUES (p_op, r.id, session_user);
                RETURN NEXT row_of(true, r);
                RETURN;
        END IF;
        RETURN QUERY SELECT * FROM unchanged(p_id);
END
$$;

-- A desk records a decision its lockboxd has checked (roles, separation of duties): only
-- along the life cycle of SPEC §3, only from the state the desk saw, dated by the database
-- (as the single-host store does: a pre-approval leaves decided_at unset, an approval's grant
-- runs duration seconds from now, a revocation keeps the end the grant had).
CREATE FUNCTION lockbox.decide(p_id text, p_expected text, p_state text, p_manager text, p_approver text,
                               p_comment text, p_op text) RETURNS SETOF lockbox.row
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
DECLARE
        r requests;
        now bigint := now_seconds();
BEGIN
        IF (p_expected, p_state) NOT IN (('pending-manager', 'pending'), ('pending-manager', 'denied'),
                                         ('pending-manager', 'cancelled'), ('pending', 'approved'),
                                         ('pending', 'denied'), ('pending', 'cancelled'),
                                         ('approved', 'revoked')) THEN
                RAISE EXCEPTION 'no decision moves a request from % to %', p_expected, p_state
                        USING ERRCODE = 'check_violation';
        END IF;
        PERFORM lock_writers();
        UPDATE requests
           SET state = p_state, manager = p_manager, approver = p_approver,
               comment = p_comment, decided_by = session_user,
               decided_at = CASE WHEN p_state = 'pending' THEN decided_at ELSE now END,
               expires_at = CASE WHEN p_state = 'approved' THEN now + duration ELSE expires_at END,
               revision = nextval('revision')
         WHERE id = p_id AND state = p_expected AND NOT withdrawn
           AND (state <> 'approved' OR expires_at > now)
        RETURNING * INTO r;
        IF FOUND THEN
                INSERT INTO ops (op_id, request_id, host) VALUES (p_op, r.id, session_user);
        RETURN NEXT row_of(true, r);
                RETURN;
        END IF;
        RETURN QUERY SELECT * FROM unchanged(p_id);
END
$$;

-- Takes back a decision whose audit entry could not be written: the row returns to what it
-- was, if it is still as that decision left it.
CREATE FUNCTION lockbox.undecide(p_id text, p_decided text, p_state text, p_decided_at bigint, p_manager text,
                                 p_approver text, p_comment text, p_expires_at bigint, p_op text)
RETURNS SETOF lockbox.row
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
DECLARE
        r requests;
BEGIN
        IF (p_decided, p_state) NOT IN (('pending', 'pending-manager'), ('denied', 'pending-manager'),
                                        ('cancelled', 'pending-manager'), ('approved', 'pending'),
                                        ('denied', 'pending'), ('cancelled', 'pending'),
                                        ('revoked', 'approved')) THEN
                RAISE EXCEPTION 'no decision moved a request from % to %', p_state, p_decided
                        USING ERRCODE = 'check_violation';
        END IF;
        PERFORM lock_writers();
        UPDATE requests
           SET state = p_state, decided_at = p_decided_at, manager = p_manager, approver = p_approver,
               comment = p_comment, expires_at = p_expires_at, decided_by = session_user,
               revision = nextval('revision')
         WHERE id = p_id AND state = p_decided AND NOT withdrawn
        RETURNING * INTO r;
        IF FOUND THEN
                INSERT INTO ops (op_id, request_id, host) VALUES (p_op, r.id, session_user);
        RETURN NEXT row_of(true, r);
        END IF;
END
$$;

-- The audit story across hosts (`lockbox audit ID` on any host): each host records here the
-- audit entries it wrote to its own journal about a request. The host is the role that
-- recorded the entry (session_user), which no host can choose.
CREATE TABLE lockbox.events (
        seq        bigserial NOT NULL PRIMARY KEY,
        record_id  text      NOT NULL UNIQUE CHECK (record_id ~ '^[0-9a-f-]{36}$'),  -- sent again after a lost answer: kept once
        request_id text      NOT NULL REFERENCES lockbox.requests (id),
        at_usec    bigint    NOT NULL CHECK (at_usec > 0),
        host       name      NOT NULL,
        hostname   text      NOT NULL CHECK (length(hostname) BETWEEN 1 AND 255),
        fields     text[]    NOT NULL CHECK (cardinality(fields) BETWEEN 1 AND 64)
);
CREATE INDEX events_request ON lockbox.events (request_id, at_usec);
REVOKE ALL ON lockbox.events FROM PUBLIC;
REVOKE ALL ON SEQUENCE lockbox.events_seq_seq FROM PUBLIC;

CREATE FUNCTION lockbox.record(p_record_id text, p_request_id text, p_at_usec bigint, p_hostname text,
                               p_fields text[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
BEGIN
        IF EXISTS (SELECT FROM unnest(p_fields) f WHERE f IS NULL OR length(f) > 4096 OR f !~ '^[A-Z_]+=') THEN
                RAISE EXCEPTION 'an audit field is NAME=value of at most 4096 bytes' USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO events (record_id, request_id, at_usec, host, hostname, fields)
        VALUES (p_record_id, p_request_id, p_at_usec, session_user, p_hostname, p_fields)
        ON CONFLICT (record_id) DO NOTHING;
END
$$;

-- One request's story from every host, oldest first, a row per field (ordinality 1..n). Bounded
-- as lockboxd's answer is (1,000 entries, 1 MiB of fields), plus the first entry past either
-- bound, by which the reader knows the story goes on.
CREATE FUNCTION lockbox.story(p_request_id text, p_since_usec bigint)
RETURNS TABLE (seq bigint, at_usec bigint, host name, hostname text, field text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
        SELECT e.seq, e.at_usec, e.host, e.hostname, f.field
          FROM (SELECT * FROM (SELECT x.*, coalesce(sum(octet_length(array_to_string(x.fields, ''))) OVER
                                                   (ORDER BY x.at_usec, x.seq
                                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING), 0)
                                                 AS before_previous
                                 FROM events x WHERE x.request_id = p_request_id AND x.at_usec >= p_since_usec) y
                 WHERE y.before_previous <= 1048576
                 ORDER BY y.at_usec, y.seq LIMIT 1001) e,
               unnest(e.fields) WITH ORDINALITY AS f (field, n)
         ORDER BY e.at_usec, e.seq, f.n
$$;

REVOKE ALL ON FUNCTION lockbox.record(text, text, bigint, text, text[]), lockbox.story(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lockbox.record(text, text, bigint, text, text[]), lockbox.story(text, bigint) TO lockbox_host;

REVOKE ALL ON FUNCTION lockbox.now_seconds(), lockbox.row_of(boolean, lockbox.requests), lockbox.unchanged(text),
        lockbox.lock_writers(), lockbox.changed() FROM PUBLIC;
-- Was the write p_op of this host applied? Its request's row as it now is, or no row.
CREATE FUNCTION lockbox.resolve(p_op text) RETURNS SETOF lockbox.row
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = lockbox, pg_temp AS $$
        SELECT (lockbox.row_of(true, r)).* FROM lockbox.ops o JOIN lockbox.requests r ON r.id = o.request_id
         WHERE o.op_id = p_op AND o.host = session_user
$$;
REVOKE ALL ON FUNCTION lockbox.resolve(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lockbox.resolve(text) TO lockbox_host;

REVOKE ALL ON FUNCTION lockbox.version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lockbox.version() TO lockbox_host;
REVOKE ALL ON FUNCTION lockbox.view(bigint), lockbox.file(text, text, text, bigint, text, text, bigint, text, text),
        lockbox.withdraw(text, text), lockbox.settle(text, text, bigint, text), lockbox.finish(text, text, text),
        lockbox.decide(text, text, text, text, text, text, text),
        lockbox.undecide(text, text, text, bigint, text, text, text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lockbox.view(bigint), lockbox.file(text, text, text, bigint, text, text, bigint, text, text),
        lockbox.withdraw(text, text), lockbox.settle(text, text, bigint, text), lockbox.finish(text, text, text)
        TO lockbox_host;
GRANT EXECUTE ON FUNCTION lockbox.decide(text, text, text, text, text, text, text),
        lockbox.undecide(text, text, text, bigint, text, text, text, bigint, text) TO lockbox_desk;

COMMIT;
