package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// TestOpenAPIConstraints keeps what openapi.json promises of requests equal
// to what the server does. It walks every request body's schema and every
// query and header parameter of every operation, and for each constraint
// the document states — type (string, integer, number, boolean, array,
// object, and whether null is allowed), minLength and maxLength (counted in
// characters), pattern, enum, format email, minimum and maximum,
// minItems and maxItems, required and additionalProperties: false — it
// sends the boundaries through the real server, one field changed at a
// time in an otherwise valid request:
//
//   - a value the constraint allows (each bound itself, integers also
//     written as 1000.0, 1000e0 or 1e3) must not be answered 400;
//   - a value it refuses (each bound overstepped, a fraction for an integer,
//     null, the wrong type, a NUL, an empty query parameter's opposite, a
//     missing required or an unknown field) must be answered 400 with the
//     field named in the problem's errors.
//
// Path parameters are not probed: a path that names nothing is a 404 by
// design. A new operation with a body or parameters needs a fixture in
// constraintFixtures; a new pattern needs examples in patternExamples.
func TestOpenAPIConstraints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fx := newConstraintFixtures(t, b)
	doc := loadConstraintDoc(t)
	total := 0
	for _, key := range sortedKeys(doc.ops) {
		op := doc.ops[key]
		g := &probeGen{t: t, doc: doc, seq: &fx.seq}
		if op.body != nil {
			g.bodyProbes(op.body)
		}
		for _, p := range op.params {
			g.paramProbes(p)
		}
		if len(g.probes) == 0 {
			continue
		}
		f, ok := fx.ops[key]
		if !ok {
			t.Errorf("%s has constraints but constraintFixtures has no request for it", key)
			continue
		}
		t.Run(key, func(t *testing.T) {
			bt := b.withT(t)
			for _, p := range g.probes {
				total++
				p.run(t, bt, key, f)
			}
		})
	}
	t.Logf("%d probes", total)
}

// --- The document ---

// constraintDoc is openapi.json read with exact numbers.
type constraintDoc struct {
	root map[string]any
	ops  map[string]*constraintOp
}

type constraintOp struct {
	body   map[string]any   // the application/json schema, resolved
	params []map[string]any // query and header parameters, resolved
}

func loadConstraintDoc(t *testing.T) *constraintDoc {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(openAPIDocument))
	dec.UseNumber()
	d := &constraintDoc{ops: map[string]*constraintOp{}}
	if err := dec.Decode(&d.root); err != nil {
		t.Fatal(err)
	}
	for path, item := range d.root["paths"].(map[string]any) {
		for method, v := range item.(map[string]any) {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			raw := v.(map[string]any)
			op := &constraintOp{}
			if rb, ok := raw["requestBody"].(map[string]any); ok {
				content := rb["content"].(map[string]any)
				if mt, ok := content["application/json"].(map[string]any); ok {
					op.body = d.resolve(mt["schema"].(map[string]any))
				}
			}
			params, _ := raw["parameters"].([]any)
			for _, p := range params {
				q := d.resolve(p.(map[string]any))
				if q["in"] == "query" || q["in"] == "header" {
					op.params = append(op.params, q)
				}
			}
			d.ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return d
}

// resolve follows $ref to #/components/….
func (d *constraintDoc) resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		v, why := resolvePointer(d.root, ref)
		if why != "" {
			panic(ref + ": " + why)
		}
		s = v.(map[string]any)
	}
}

// types returns a schema's types.
func types(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, e.(string))
		}
		return out
	}
	return nil
}

func bigOf(v any) (*big.Int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, false
	}
	i, ok := new(big.Int).SetString(string(n), 10)
	return i, ok
}

// --- Probes ---

// probe is one request and what it must be answered.
type probe struct {
	field string // the field or parameter at stake
	what  string // what was sent, for messages
	ok    bool   // in range: not a 400; else a 400 naming field
	// noField marks a refusal that cannot name a field: the body itself.
	noField bool
	// mutate changes a fresh valid body; raw replaces it.
	mutate func(body map[string]any)
	raw    any
	query  url.Values
	header []string
}

func (p *probe) run(t *testing.T, b *testBundle, key string, f constraintFixture) {
	t.Helper()
	method, _, _ := strings.Cut(key, " ")
	var body any
	var bodyMap map[string]any
	if f.body != nil {
		bodyMap = f.body()
		if p.mutate != nil {
			p.mutate(bodyMap)
		}
		body = bodyMap
	}
	if p.raw != nil {
		body = p.raw
	}
	path := f.path
	if f.pathFor != nil {
		path = f.pathFor(bodyMap)
	}
	if len(p.query) > 0 {
		path += "?" + p.query.Encode()
	}
	r := b.do(method, path, f.token, body, p.header...)
	what := fmt.Sprintf("%s with %s %s", key, p.field, p.what)
	switch {
	case p.ok && r.Status == 400:
		t.Errorf("%s is allowed by openapi.json, but the server answers %d %s", what, r.Status, r.Body)
	case p.ok && r.Status >= 500:
		t.Errorf("%s: %d %s", what, r.Status, r.Body)
	case !p.ok && r.Status != 400:
		t.Errorf("%s is refused by openapi.json, but the server answers %d %s", what, r.Status, r.Body)
	case !p.ok && !p.noField:
		var pb problemBody
		r.JSON(t, &pb)
		if !slices.ContainsFunc(pb.Errors, func(e problem.FieldError) bool { return e.Field == p.field }) {
			t.Errorf("%s: the 400 does not name %s in errors: %s", what, p.field, r.Body)
		}
	}
}

// probeGen generates the probes of one operation.
type probeGen struct {
	t      *testing.T
	doc    *constraintDoc
	seq    *int
	probes []probe
}

func (g *probeGen) next() int { *g.seq++; return *g.seq }

func (g *probeGen) add(p probe) { g.probes = append(g.probes, p) }

// bodyProbes probes a request body's schema.
func (g *probeGen) bodyProbes(s map[string]any) {
	closed := s["additionalProperties"] == false
	for _, raw := range []string{`null`, `[]`, `"x"`} {
		g.add(probe{field: "body", what: raw, raw: raw, noField: !closed})
	}
	if closed {
		g.object(s, func(root map[string]any) map[string]any { return root }, "")
	}
}

// object probes the properties of object schema s, found in a request's
// body by at and named prefix.
func (g *probeGen) object(s map[string]any, at func(root map[string]any) map[string]any, prefix string) {
	props, _ := s["properties"].(map[string]any)
	join := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	for _, name := range slices.Sorted(maps.Keys(props)) {
		ps := g.doc.resolve(props[name].(map[string]any))
		set := func(v any) func(map[string]any) {
			return func(root map[string]any) { at(root)[name] = v }
		}
		g.value(ps, join(name), set)
		if slices.Contains(types(ps), "array") {
			g.arrayItems(ps, at, name, join(name))
		}
	}
	req, _ := s["required"].([]any)
	for _, r := range req {
		name := r.(string)
		g.add(probe{field: join(name), what: "left out", mutate: func(root map[string]any) { delete(at(root), name) }})
	}
	if s["additionalProperties"] == false {
		g.add(probe{field: join("zz_unknown"), what: "added", mutate: func(root map[string]any) { at(root)["zz_unknown"] = 1 }})
	}
}

// arrayItems probes the first item of array property name: its own
// constraints, or an object's properties.
func (g *probeGen) arrayItems(ps map[string]any, at func(root map[string]any) map[string]any, name, field string) {
	if n, ok := bigOf(ps["maxItems"]); ok && n.Sign() == 0 {
		return // no item is ever allowed
	}
	items := g.doc.resolve(ps["items"].(map[string]any))
	first := func(root map[string]any) []any {
		arr, _ := at(root)[name].([]any)
		if len(arr) == 0 {
			arr = []any{g.valid(items, g.next())}
			at(root)[name] = arr
		}
		return arr
	}
	if slices.Contains(types(items), "object") {
		g.object(items, func(root map[string]any) map[string]any { return first(root)[0].(map[string]any) }, field+"[0]")
		return
	}
	g.value(items, field+"[0]", func(v any) func(map[string]any) {
		return func(root map[string]any) { first(root)[0] = v }
	})
}

// value probes one value of schema s named field; set returns the
// mutation that puts v there.
func (g *probeGen) value(s map[string]any, field string, set func(v any) func(map[string]any)) {
	ts := types(s)
	if len(ts) == 0 {
		g.t.Errorf("%s: a schema without a type", field)
		return
	}
	g.add(probe{field: field, what: "null", ok: slices.Contains(ts, "null"), mutate: set(nil)})
	wrong := any("x")
	if slices.Contains(ts, "string") {
		wrong = json.Number("12")
	}
	g.add(probe{field: field, what: fmt.Sprintf("of the wrong type (%v)", wrong), mutate: set(wrong)})
	if len(ts) > 1 {
		for _, typ := range ts {
			switch typ {
			case "object":
				g.add(probe{field: field, what: "an object", ok: true, mutate: set(map[string]any{})})
			case "boolean":
				g.add(probe{field: field, what: "true", ok: true, mutate: set(true)})
			}
		}
		return
	}
	switch ts[0] {
	case "string":
		g.stringValue(s, field, func(v string) func(map[string]any) { return set(v) })
	case "integer", "number":
		g.numberValue(s, field, ts[0] == "integer", func(v json.Number) func(map[string]any) { return set(v) })
	case "boolean":
		g.add(probe{field: field, what: "true", ok: true, mutate: set(true)})
		g.add(probe{field: field, what: `"true"`, mutate: set("true")})
	case "array":
		g.arrayValue(s, field, set)
	}
}

// stringValue probes a string's enum, pattern, format and lengths.
func (g *probeGen) stringValue(s map[string]any, field string, set func(string) func(map[string]any)) {
	for _, c := range g.stringCases(s, field, nil) {
		g.add(probe{field: field, what: fmt.Sprintf("%.40q (%d characters)", c.v, len([]rune(c.v))), ok: c.ok, mutate: set(c.v)})
	}
}

type stringCase struct {
	v  string
	ok bool
}

// stringCases are the values a string constraint allows and refuses.
// gen, if not nil, makes a valid value of n characters for a parameter
// whose meaning the document cannot state.
func (g *probeGen) stringCases(s map[string]any, field string, gen func(n, seq int) (string, bool)) []stringCase {
	var cases []stringCase
	if enum, ok := s["enum"].([]any); ok {
		for _, e := range enum {
			cases = append(cases, stringCase{e.(string), true})
		}
		return append(cases, stringCase{"zz-not-in-the-enum", false})
	}
	pattern, _ := s["pattern"].(string)
	format, _ := s["format"].(string)
	if pattern != "" {
		ex, ok := patternExamples[pattern]
		if !ok {
			g.t.Errorf("%s: no examples for pattern %q in patternExamples", field, pattern)
			return nil
		}
		re := regexp.MustCompile(pattern)
		for _, v := range ex.valid(g.next()) {
			if !re.MatchString(v) {
				g.t.Fatalf("patternExamples[%q]: valid example %q does not match", pattern, v)
			}
			cases = append(cases, stringCase{v, true})
		}
		for _, v := range ex.invalid {
			if re.MatchString(v) {
				g.t.Fatalf("patternExamples[%q]: invalid example %q matches", pattern, v)
			}
			cases = append(cases, stringCase{v, false})
		}
		if gen == nil && ex.ofLen != nil {
			gen = ex.ofLen
		}
	}
	if gen == nil {
		switch {
		case format == "email":
			gen = emailOfLen
		case pattern == "":
			gen = textOfLen
		}
	}
	if min, ok := bigOf(s["minLength"]); ok && min.Sign() > 0 {
		n := int(min.Int64())
		if v, ok := g.ofLen(field, gen, n-1); ok {
			cases = append(cases, stringCase{v, false})
		}
		if v, ok := g.ofLen(field, gen, n); ok {
			cases = append(cases, stringCase{v, true})
		}
	}
	if max, ok := bigOf(s["maxLength"]); ok {
		n := int(max.Int64())
		if v, ok := g.ofLen(field, gen, n); ok {
			cases = append(cases, stringCase{v, true})
		}
		if v, ok := g.ofLen(field, gen, n+1); ok {
			cases = append(cases, stringCase{v, false})
		}
	}
	// The text rule holds for every string.
	return append(cases, stringCase{"a\x00b", false})
}

// ofLen makes a value of n characters for field with gen; "" needs no gen.
func (g *probeGen) ofLen(field string, gen func(n, seq int) (string, bool), n int) (string, bool) {
	if n == 0 {
		return "", true
	}
	if gen == nil {
		g.t.Errorf("%s: no way to make a value of %d characters: give its pattern an ofLen in patternExamples", field, n)
		return "", false
	}
	return gen(n, g.next())
}

// numberValue probes an integer's or a number's bounds and, for an
// integer, the spellings of integers.
func (g *probeGen) numberValue(s map[string]any, field string, integer bool, set func(json.Number) func(map[string]any)) {
	for _, c := range numberCases(s, integer) {
		g.add(probe{field: field, what: string(c.v), ok: c.ok, mutate: set(c.v)})
	}
}

type numberCase struct {
	v  json.Number
	ok bool
}

func numberCases(s map[string]any, integer bool) []numberCase {
	var cases []numberCase
	bound := func(key string) (*big.Float, bool) {
		n, ok := s[key].(json.Number)
		if !ok {
			return nil, false
		}
		f, _, err := big.ParseFloat(string(n), 10, 200, big.ToNearestEven)
		return f, err == nil
	}
	text := func(f *big.Float) json.Number {
		if f.IsInt() {
			i, _ := f.Int(nil)
			return json.Number(i.String())
		}
		return json.Number(f.Text('g', 30))
	}
	one := big.NewFloat(1)
	inRange := []*big.Float{}
	if min, ok := bound("minimum"); ok {
		inRange = append(inRange, min)
		cases = append(cases, numberCase{text(new(big.Float).Sub(min, one)), false})
	}
	if max, ok := bound("maximum"); ok {
		inRange = append(inRange, max)
		cases = append(cases, numberCase{text(new(big.Float).Add(max, one)), false})
	}
	if min, ok := bound("exclusiveMinimum"); ok {
		cases = append(cases, numberCase{text(min), false})
	}
	if max, ok := bound("exclusiveMaximum"); ok {
		cases = append(cases, numberCase{text(max), false})
	}
	for _, v := range inRange {
		lit := text(v)
		cases = append(cases, numberCase{lit, true})
		if !integer {
			continue
		}
		// Other spellings of the same integer.
		digits := strings.TrimPrefix(string(lit), "-")
		sign := string(lit)[:len(lit)-len(digits)]
		cases = append(cases, numberCase{lit + ".0", true}, numberCase{lit + "e0", true})
		if trimmed := strings.TrimRight(digits, "0"); trimmed != digits && trimmed != "" {
			cases = append(cases, numberCase{json.Number(sign + trimmed + "e" + strconv.Itoa(len(digits)-len(trimmed))), true})
		}
	}
	if integer && len(inRange) > 0 {
		// A fraction between the bounds, or just above the only one.
		half := new(big.Float).Add(inRange[0], big.NewFloat(0.5))
		if len(inRange) == 2 && half.Cmp(inRange[1]) > 0 {
			half = new(big.Float).Sub(inRange[0], big.NewFloat(0.5))
		}
		cases = append(cases, numberCase{json.Number(half.Text('f', 1)), false})
	}
	return cases
}

// arrayValue probes an array's item counts.
func (g *probeGen) arrayValue(s map[string]any, field string, set func(v any) func(map[string]any)) {
	items := g.doc.resolve(s["items"].(map[string]any))
	of := func(n int) []any {
		arr := make([]any, n)
		for i := range arr {
			arr[i] = g.valid(items, g.next())
		}
		return arr
	}
	if min, ok := bigOf(s["minItems"]); ok {
		n := int(min.Int64())
		g.add(probe{field: field, what: fmt.Sprintf("with %d items", n), ok: true, mutate: set(of(n))})
		if n > 0 {
			g.add(probe{field: field, what: fmt.Sprintf("with %d items", n-1), mutate: set(of(n - 1))})
		}
	}
	if max, ok := bigOf(s["maxItems"]); ok {
		n := int(max.Int64())
		g.add(probe{field: field, what: fmt.Sprintf("with %d items", n), ok: true, mutate: set(of(n))})
		g.add(probe{field: field, what: fmt.Sprintf("with %d items", n+1), mutate: set(of(n + 1))})
	}
}

// valid returns a valid value of schema s, distinct for each seq.
func (g *probeGen) valid(s map[string]any, seq int) any {
	s = g.doc.resolve(s)
	if enum, ok := s["enum"].([]any); ok {
		return enum[0]
	}
	switch types(s)[0] {
	case "object":
		obj := map[string]any{}
		req, _ := s["required"].([]any)
		props, _ := s["properties"].(map[string]any)
		for _, r := range req {
			obj[r.(string)] = g.valid(props[r.(string)].(map[string]any), seq)
		}
		return obj
	case "string":
		if p, ok := s["pattern"].(string); ok {
			return patternExamples[p].valid(seq)[0]
		}
		if s["format"] == "email" {
			v, _ := emailOfLen(20, seq)
			return v
		}
		v, _ := textOfLen(8, seq)
		return v
	case "integer", "number":
		if min, ok := s["minimum"].(json.Number); ok {
			return min
		}
		return json.Number("0")
	case "boolean":
		return false
	case "array":
		n := 0
		if min, ok := bigOf(s["minItems"]); ok {
			n = int(min.Int64())
		}
		arr := make([]any, n)
		for i := range arr {
			arr[i] = g.valid(s["items"].(map[string]any), seq*10+i)
		}
		return arr
	}
	return nil
}

// paramProbes probes a query or header parameter.
func (g *probeGen) paramProbes(p map[string]any) {
	name := p["name"].(string)
	s := g.doc.resolve(p["schema"].(map[string]any))
	header := p["in"] == "header"
	send := func(v string) probe {
		if header {
			return probe{header: []string{name, v}}
		}
		return probe{query: url.Values{name: {v}}}
	}
	add := func(v string, ok bool) {
		pr := send(v)
		pr.field, pr.what, pr.ok = name, fmt.Sprintf("%.40q", v), ok
		g.add(pr)
	}
	if !header {
		add("", p["required"] != true) // an empty query parameter is an absent one
	}
	switch types(s)[0] {
	case "integer", "number":
		for _, c := range numberCases(s, false) {
			add(string(c.v), c.ok)
		}
		add("x", false)
		if types(s)[0] == "integer" {
			add("1.5", false)
		}
	case "string":
		for _, c := range g.stringCases(s, name, paramOfLen[name]) {
			if c.v == "" && header {
				c.ok = false // a header that is present is never empty
			}
			if c.v == "" && !header {
				continue // empty is absent, probed above
			}
			if c.ok && opaqueParams[name] {
				continue
			}
			if strings.IndexByte(c.v, 0) >= 0 && header {
				continue // no HTTP client sends a NUL in a header
			}
			add(c.v, c.ok)
		}
	}
}

// --- Values ---

// textOfLen is n characters of text, most of them two bytes long in UTF-8,
// so that a length counted in bytes shows.
func textOfLen(n, seq int) (string, bool) {
	prefix := strconv.Itoa(seq % 10)
	return prefix + strings.Repeat("é", n-1), n >= 1
}

// emailOfLen is a valid email address of n characters.
func emailOfLen(n, seq int) (string, bool) {
	if n < 3 {
		return strings.Repeat("@", n), true // not an address at all
	}
	local := []rune(strconv.Itoa(seq) + strings.Repeat("é", n))[:n-2]
	return string(local) + "@b", true
}

// patternExamples are values of each pattern openapi.json uses in request
// schemas and parameters: valid ones (made unique by seq where a request
// creates something), invalid ones, and how to make a valid value of n
// characters where the pattern combines with minLength or maxLength. The
// test checks each example against its pattern.
var patternExamples = map[string]struct {
	valid   func(seq int) []string
	invalid []string
	ofLen   func(n, seq int) (string, bool)
}{
	// Slugs and plan names; constraintFixtures creates plans of these
	// names, so that they can be referred to.
	`^[a-z][a-z0-9-]{1,62}$`: {
		valid:   func(int) []string { return []string{"ab", longSlug} },
		invalid: []string{"a", longSlug + "x", "Ab", "1ab", "a_b", "a b", "ab-é"},
	},
	`^-?[A-Za-z_][A-Za-z0-9_]{0,63}$`: {
		valid:   func(seq int) []string { return []string{"f" + strconv.Itoa(seq), "-" + strings.Repeat("A", 64), "_"} },
		invalid: []string{"-", "9a", "a-b", "+a", strings.Repeat("a", 65), "é"},
	},
	`^[A-Za-z_][A-Za-z0-9_]{0,63}$`: {
		valid:   func(seq int) []string { return []string{"e" + strconv.Itoa(seq), strings.Repeat("Z", 64), "_"} },
		invalid: []string{"-a", "9a", "a.b", "", strings.Repeat("a", 65), "é"},
	},
	// Retention durations.
	`^([1-9][0-9]{0,4}d|[1-9][0-9]{0,5}h|[1-9][0-9]{0,7}m)$`: {
		valid:   func(int) []string { return []string{"1d", "99999d", "999999h", "99999999m", "30m", "12h"} },
		invalid: []string{"0d", "100000d", "1000000h", "100000000m", "01d", "1w", "1.5d", "-1d", "d", "1D", "1d ", "90"},
	},
	`^[1-9][0-9]{0,4}d$`: {
		valid:   func(int) []string { return []string{"1d", "365d", "99999d"} },
		invalid: []string{"0d", "100000d", "12h", "01d", "d", "365", "1D"},
	},
	`^[+-]?[A-Za-z_][A-Za-z0-9_]{0,63}$`: {
		valid:   func(int) []string { return []string{"a", "+_9", "-" + strings.Repeat("z", 64)} },
		invalid: []string{"-", "9a", "a.b", "--a", strings.Repeat("a", 65)},
	},
	// Job kinds.
	`^[a-z][a-z0-9_]{0,63}$`: {
		valid: func(seq int) []string {
			return []string{"k", "kind_" + strconv.Itoa(seq), "a" + strings.Repeat("9", 63)}
		},
		invalid: []string{"9a", "_a", "A", "a-b", "a" + strings.Repeat("b", 64), "é"},
	},
	// Issuer URLs.
	`^https?://[^\s?#]+$`: {
		valid:   func(int) []string { return []string{"http://127.0.0.1:1", "https://127.0.0.1:1/tenant/é"} },
		invalid: []string{"ftp://127.0.0.1", "127.0.0.1", "https://", "https://idp.example.com/?a=b", "https://idp.example.com/#f", "https://idp example.com"},
		ofLen: func(n, seq int) (string, bool) {
			s := "http://127.0.0.1:1/" + strings.Repeat("a", n)
			return s[:n], n >= len("http://127.0.0.1:1")
		},
	},
	// Grace periods (core.GracePattern); constraintFixtures deletes a
	// fresh tenant with each.
	core.GracePattern: {
		valid:   func(int) []string { return []string{"0", "1m", "30d", "366d", "8784h", "527040m"} },
		invalid: []string{"00", "0d", "367d", "8785h", "527041m", "1w", "-1d", "1.5d", "1D", "030d"},
	},
	// Usage ranges' ends (core.UsageTimePattern): within the last 366
	// days, so that each alone makes a valid range.
	core.UsageTimePattern: {
		valid: func(int) []string {
			now := time.Now().UTC()
			return []string{now.AddDate(0, 0, -1).Format(time.DateOnly),
				now.Add(-2 * time.Hour).In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000000000Z07:00")}
		},
		invalid: []string{"2026-12-01T00:00:00", "2026-12-1", "20261201", "2026-12-01 00:00:00Z", "2026-12-01T00:00Z", "2026-12-01T00:00:00+0200", "yesterday"},
	},
	`^[!-~]+$`: {
		valid:   func(seq int) []string { return []string{"k" + strconv.Itoa(seq) + "!~"} },
		invalid: []string{"a b", "ké"},
		ofLen: func(n, seq int) (string, bool) {
			s := "k" + strconv.Itoa(seq) + strings.Repeat("~", n)
			return s[:n], n >= 1
		},
	},
}

// longSlug is the longest slug: 63 characters.
var longSlug = "a" + strings.Repeat("b-9", 20) + "zz"

// paramOfLen makes valid values of n characters for parameters whose
// meaning a schema cannot state.
var paramOfLen = map[string]func(n, seq int) (string, bool){
	"filter": func(n, seq int) (string, bool) {
		return `a = "` + strings.Repeat("é", n-6) + `"`, n >= 6
	},
	"cursor": func(n, seq int) (string, bool) { return strings.Repeat("A", n), true },
}

// opaqueParams are parameters whose valid values only the server makes: only
// their refusals are probed.
var opaqueParams = map[string]bool{"cursor": true, "confirm": true} // confirm: only the tenant's slug is valid

// --- Fixtures ---

// constraintFixture is a valid request of one operation.
type constraintFixture struct {
	path    string
	pathFor func(body map[string]any) string // if set, the path for a body
	token   string
	body    func() map[string]any // a fresh valid body, for operations with one
}

type constraintFixtures struct {
	ops map[string]constraintFixture
	seq int
}

func newConstraintFixtures(t *testing.T, b *testBundle) *constraintFixtures {
	t.Helper()
	b.tenant("acme", tenant.Pooled)
	b.tenant("patched", tenant.Pooled)
	owner := b.apiKey("acme", tenant.Owner)
	admin := b.apiKey("acme", tenant.Admin)
	b.collection("acme", admin, "notes", nil)
	rec := b.createRecord("acme", admin, "notes", map[string]any{"a": 1})
	var user struct{ ID string }
	b.must(201, "POST", tpath("acme", "users"), b.admin,
		map[string]any{"email": "ada@example.com", "password": "correct horse battery", "role": "member"}).JSON(t, &user)
	// Plans named by the slug pattern's valid examples, so that a tenant
	// can be put on them.
	planBody := func() map[string]any {
		return map[string]any{"rate_per_sec": 5, "burst": 10, "max_inflight": 2, "weight": 1, "max_records": 0, "max_bytes": 0}
	}
	for _, name := range patternExamples[`^[a-z][a-z0-9-]{1,62}$`].valid(0) {
		b.must(200, "PUT", "/v1/plans/"+name, b.admin, planBody())
	}
	// A user with an access token of their own, for the TOTP routes.
	totpUser := b.userToken("acme", "totp@example.com", tenant.Member)
	slugRE := regexp.MustCompile(`^[a-z][a-z0-9-]{1,62}$`)
	fx := &constraintFixtures{}
	uniq := func() int { fx.seq++; return fx.seq }
	fx.ops = map[string]constraintFixture{
		"POST /v1/tenants": {path: "/v1/tenants", token: b.admin, body: func() map[string]any {
			return map[string]any{"slug": fmt.Sprintf("t-%d", uniq()), "name": "Probe"}
		}},
		"GET /v1/tenants": {path: "/v1/tenants", token: b.admin},
		// Each DELETE offboards a tenant of its own: grace=0 purges it.
		"DELETE /v1/tenants/{tenant}": {token: b.admin, pathFor: func(map[string]any) string {
			slug := fmt.Sprintf("doomed-%d", uniq())
			b.tenant(slug, tenant.Pooled)
			return "/v1/tenants/" + slug
		}},
		"GET /v1/tenants/{tenant}/usage":     {path: tpath("acme", "usage"), token: admin},
		"PATCH /v1/tenants/{tenant}":         {path: "/v1/tenants/patched", token: b.admin, body: func() map[string]any { return map[string]any{} }},
		"GET /v1/audit":                      {path: "/v1/audit", token: b.admin},
		"GET /v1/health/tenants":             {path: "/v1/health/tenants", token: b.admin},
		"GET /v1/tenants/{tenant}/audit":     {path: tpath("acme", "audit"), token: admin},
		"GET /v1/tenants/{tenant}/jobs":      {path: tpath("acme", "jobs"), token: admin},
		"POST /v1/tenants/{tenant}/restores": {path: tpath("acme", "restores"), token: admin},
		"POST /v1/tenants/{tenant}/users": {path: tpath("acme", "users"), token: b.admin, body: func() map[string]any {
			return map[string]any{"email": fmt.Sprintf("u%d@example.com", uniq()), "password": "correct horse battery", "role": "member"}
		}},
		"PATCH /v1/tenants/{tenant}/users/{id}": {path: tpath("acme", "users", user.ID), token: owner,
			body: func() map[string]any { return map[string]any{"role": "member"} }},
		"POST /v1/tenants/{tenant}/auth/login": {path: tpath("acme", "auth", "login"), body: func() map[string]any {
			return map[string]any{"email": "ada@example.com", "password": "correct horse battery"}
		}},
		"POST /v1/tenants/{tenant}/auth/refresh": {path: tpath("acme", "auth", "refresh"), body: func() map[string]any {
			return map[string]any{"refresh_token": "not-a-refresh-token"}
		}},
		// No provider listens on port 1: every valid body is refused with
		// 422 once discovery fails, after the checks the probes test.
		"PUT /v1/tenants/{tenant}/auth/oidc": {path: tpath("acme", "auth", "oidc"), token: owner, body: func() map[string]any {
			return map[string]any{"issuer": "http://127.0.0.1:1", "client_id": "c", "client_secret": "s"}
		}},
		// acme has no federation: every valid request is a 404, after the
		// checks of the parameters.
		"GET /v1/tenants/{tenant}/auth/oidc/callback": {path: tpath("acme", "auth", "oidc", "callback")},
		"POST /v1/tenants/{tenant}/auth/totp/verify": {path: tpath("acme", "auth", "totp", "verify"), token: totpUser.AccessToken,
			body: func() map[string]any { return map[string]any{"code": "123456"} }},
		"POST /v1/tenants/{tenant}/auth/totp/disable": {path: tpath("acme", "auth", "totp", "disable"), token: totpUser.AccessToken,
			body: func() map[string]any { return map[string]any{"code": "123456"} }},
		"PUT /v1/tenants/{tenant}/audit/retention": {path: tpath("acme", "audit", "retention"), token: b.admin,
			body: func() map[string]any { return map[string]any{"keep": "365d"} }},
		"PUT /v1/tenants/{tenant}/auth/policy": {path: tpath("acme", "auth", "policy"), token: admin,
			body: func() map[string]any { return map[string]any{"mfa_required_role": "none"} }},
		"POST /v1/tenants/{tenant}/break-glass": {path: tpath("acme", "break-glass"), token: b.admin, body: func() map[string]any {
			return map[string]any{"reason": "constraint probe", "minutes": 5}
		}},
		"POST /v1/tenants/{tenant}/api-keys": {path: tpath("acme", "api-keys"), token: b.admin, body: func() map[string]any {
			return map[string]any{"name": "probe", "role": "viewer"}
		}},
		// Each PUT makes a new collection: encrypted_fields are fixed once
		// a collection exists.
		"PUT /v1/tenants/{tenant}/collections/{collection}": {token: admin,
			pathFor: func(map[string]any) string { return tpath("acme", "collections", fmt.Sprintf("probe%d", uniq())) },
			body:    func() map[string]any { return map[string]any{"indexes": []any{map[string]any{"fields": []any{"a"}}}} }},
		"POST /v1/tenants/{tenant}/collections/{collection}/records": {path: tpath("acme", "collections", "notes", "records"), token: admin,
			body: func() map[string]any { return map[string]any{"a": uniq()} }},
		"GET /v1/tenants/{tenant}/collections/{collection}/records": {path: tpath("acme", "collections", "notes", "records"), token: admin},
		"PATCH /v1/tenants/{tenant}/collections/{collection}/records/{id}": {path: tpath("acme", "collections", "notes", "records", rec.ID),
			token: admin, body: func() map[string]any { return map[string]any{"b": uniq()} }},
		// A plan named in the body is put at its own path when it is a
		// plan name; otherwise at "probe", whose name it then fails to
		// match.
		"PUT /v1/plans/{plan}": {token: b.admin, body: planBody, pathFor: func(body map[string]any) string {
			if name, ok := body["name"].(string); ok && slugRE.MatchString(name) {
				return "/v1/plans/" + name
			}
			return "/v1/plans/probe"
		}},
	}
	return fx
}
