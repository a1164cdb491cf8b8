-- +goose Up
-- The typed sort key of a data key (package filter): the rank, number and
-- text of field k of a record's JSON object d. Filters, orders and the
-- physical indexes of declared indexes all compute the key with these
-- functions, so that an index's expressions are the query's; every tenant
-- schema, pooled or silo, uses these, from this schema of their own, which
-- holds nothing else.
--
-- Why functions, and why PL/pgSQL: every table of tenant data has forced
-- row-level security, and PostgreSQL uses a query's condition as an index
-- condition only if every function it applies to a column is LEAKPROOF (it
-- could otherwise run on rows the policy hides, and leak them through an
-- error). No jsonb function is. These are: they never raise an error and
-- have no side effect, whatever the object. Only a superuser may declare
-- it, once, after the Migrate that creates them (pgstore.LeakproofSQL);
-- until then, declared indexes serve orders but not filters. They take the
-- object itself (a column) and the key, so that no leaky operator applies
-- to the column outside them, and are PL/pgSQL so that the planner does
-- not inline them, which would bring the leaky operators back: a PL/pgSQL
-- expression costs about a quarter more than the same SQL inlined, where a
-- non-inlined SQL function costs three times as much. They also keep an
-- index's expressions small: PostgreSQL keeps them in a catalog row that
-- cannot exceed 8 kB, which the number's exact bounds written out overflow
-- at three fields. Every name is qualified, so that they do not depend on
-- the caller's search_path.
--
-- Numbers are float8, rounded as IEEE 754 and SQLite round them:
-- PostgreSQL's own conversion fails beyond float8's range, so values at or
-- beyond 2^1024 - 2^970 (half an ulp above the largest double) become
-- ±Infinity, and values within 2^-1075 of zero (half the smallest
-- denormal) become 0. Text compares by code point: callers apply
-- COLLATE "C" to txt's result.

CREATE SCHEMA bulkhead_keys;
GRANT USAGE ON SCHEMA bulkhead_keys TO PUBLIC;

-- +goose StatementBegin
CREATE FUNCTION bulkhead_keys.rank(d jsonb, k text) RETURNS integer
	LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
	RETURN CASE pg_catalog.jsonb_typeof(d OPERATOR(pg_catalog.->) k)
		WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3
		WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION bulkhead_keys.num(d jsonb, k text) RETURNS float8
	LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
	v jsonb := d OPERATOR(pg_catalog.->) k;
BEGIN
	RETURN CASE pg_catalog.jsonb_typeof(v)
		WHEN 'boolean' THEN CASE WHEN v OPERATOR(pg_catalog.=) 'true'::jsonb THEN 1::float8 ELSE 0::float8 END
		WHEN 'number' THEN CASE
			WHEN v::numeric OPERATOR(pg_catalog.>=) 179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792 THEN 'Infinity'::float8
			WHEN v::numeric OPERATOR(pg_catalog.<=) -179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792 THEN '-Infinity'::float8
			WHEN pg_catalog.abs(v::numeric) OPERATOR(pg_catalog.<=) 0.0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000024703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125 THEN 0::float8
			ELSE v::float8 END
		ELSE 0::float8 END;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION bulkhead_keys.txt(d jsonb, k text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
	RETURN CASE pg_catalog.jsonb_typeof(d OPERATOR(pg_catalog.->) k)
		WHEN 'string' THEN d OPERATOR(pg_catalog.->>) k ELSE '' END;
END
$$;
-- +goose StatementEnd
