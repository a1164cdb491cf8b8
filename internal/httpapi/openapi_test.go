package httpapi

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// The tests below keep openapi.json equal to the code: the routes of
// routeTable and their authentication, the body schemas and the Go structs
// behind them, and the problem codes of package problem. openapi.json is
// written by hand; when one of these fails, change the document (or the
// code) until they agree.

// oaDoc is the part of an OpenAPI document the tests read.
type oaDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		Responses       map[string]oaResponse      `json:"responses"`
		Parameters      map[string]oaParameter     `json:"parameters"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

type oaOperation struct {
	OperationID string                `json:"operationId"`
	Tags        []string              `json:"tags"`
	Summary     string                `json:"summary"`
	Security    json.RawMessage       `json:"security"` // nil when absent
	Parameters  []oaParameter         `json:"parameters"`
	RequestBody json.RawMessage       `json:"requestBody"`
	Responses   map[string]oaResponse `json:"responses"`
}

type oaParameter struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type oaResponse struct {
	Ref     string                 `json:"$ref"`
	Content map[string]oaMediaType `json:"content"`
}

type oaMediaType struct {
	Schema oaSchema `json:"schema"`
}

type oaSchema struct {
	Ref        string              `json:"$ref"`
	Properties map[string]oaSchema `json:"properties"`
	Const      json.RawMessage     `json:"const"`
	Enum       []any               `json:"enum"`
}

// oaOp is one operation with where it lives.
type oaOp struct {
	key        string // "GET /v1/tenants"
	path       string
	pathParams []oaParameter // declared on the path item
	oaOperation
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadOpenAPI parses the embedded document.
func loadOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	var doc oaDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return &doc
}

// operations returns the document's operations by "METHOD path".
func (d *oaDoc) operations(t *testing.T) map[string]*oaOp {
	t.Helper()
	ops := map[string]*oaOp{}
	for path, item := range d.Paths {
		var pathParams []oaParameter
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &pathParams); err != nil {
				t.Fatalf("paths[%q].parameters: %v", path, err)
			}
		}
		for key, raw := range item {
			if !slices.Contains(httpMethods, key) {
				continue
			}
			op := &oaOp{key: strings.ToUpper(key) + " " + path, path: path, pathParams: pathParams}
			if err := json.Unmarshal(raw, &op.oaOperation); err != nil {
				t.Fatalf("%s: %v", op.key, err)
			}
			ops[op.key] = op
		}
	}
	return ops
}

// parameter resolves a parameter that may be a reference to
// #/components/parameters.
func (d *oaDoc) parameter(p oaParameter) (oaParameter, bool) {
	if p.Ref == "" {
		return p, true
	}
	name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
	if !ok {
		return oaParameter{}, false
	}
	q, ok := d.Components.Parameters[name]
	return q, ok
}

// response resolves a response that may be a reference to
// #/components/responses.
func (d *oaDoc) response(r oaResponse) (oaResponse, bool) {
	if r.Ref == "" {
		return r, true
	}
	name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
	if !ok {
		return oaResponse{}, false
	}
	q, ok := d.Components.Responses[name]
	return q, ok
}

// closedBody reports whether a request body's JSON schema refuses unknown
// fields.
func (d *oaDoc) closedBody(raw json.RawMessage) bool {
	var body struct {
		Content map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"content"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return false
	}
	mt, ok := body.Content["application/json"]
	if !ok {
		return false
	}
	s := d.schema(mt.Schema)
	return s != nil && s["additionalProperties"] == false
}

// schema resolves a schema that may be a reference to
// #/components/schemas. It returns nil if the reference does not resolve.
func (d *oaDoc) schema(s map[string]any) map[string]any {
	for s != nil {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name, _ := strings.CutPrefix(ref, "#/components/schemas/")
		s = nil
		json.Unmarshal(d.Components.Schemas[name], &s)
	}
	return nil
}

// routeKeys returns the server's routes by "METHOD pattern". Building a
// Server with a zero Config touches neither core nor the store.
func routeKeys() map[string]Route {
	routes := map[string]Route{}
	for _, rt := range New(Config{}).Routes() {
		routes[rt.Method+" "+rt.Pattern] = rt
	}
	return routes
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	var v map[string]any
	if err := json.Unmarshal(openAPIDocument, &v); err != nil {
		t.Fatalf("openapi.json is not a JSON object: %v", err)
	}
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want %q", doc.OpenAPI, "3.1.0")
	}
	if _, ok := doc.Components.SecuritySchemes["bearerAuth"]; !ok {
		t.Error("components.securitySchemes has no bearerAuth")
	}
	if want := []map[string][]string{{"bearerAuth": {}}}; !cmp.Equal(doc.Security, want) {
		t.Errorf("global security = %v, want %v", doc.Security, want)
	}
}

func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	routes := routeKeys()
	ops := loadOpenAPI(t).operations(t)

	var undocumented, unrouted []string
	for _, k := range sortedKeys(routes) {
		if ops[k] == nil {
			undocumented = append(undocumented, k)
		}
	}
	for _, k := range sortedKeys(ops) {
		if _, ok := routes[k]; !ok {
			unrouted = append(unrouted, k)
		}
	}
	if len(undocumented) > 0 {
		t.Errorf("routes in routeTable missing from openapi.json:\n\t%s", strings.Join(undocumented, "\n\t"))
	}
	if len(unrouted) > 0 {
		t.Errorf("operations in openapi.json missing from routeTable:\n\t%s", strings.Join(unrouted, "\n\t"))
	}

	for _, k := range sortedKeys(routes) {
		op := ops[k]
		if op == nil {
			continue
		}
		switch sec := strings.Join(strings.Fields(string(op.Security)), ""); {
		case routes[k].Public && op.Security == nil:
			t.Errorf("%s is public: want security: [], got none (it inherits bearerAuth)", k)
		case routes[k].Public && sec != "[]":
			t.Errorf("%s is public: want security: [], got security: %s", k, sec)
		case !routes[k].Public && op.Security != nil:
			t.Errorf("%s needs a credential: want no security override, got security: %s", k, sec)
		}
		if _, ok := op.Responses["401"]; !routes[k].Public && !ok {
			t.Errorf("%s needs a credential but does not document 401", k)
		}
		// The request path reads a body exactly where one is documented.
		if rt := routes[k]; (rt.Body || rt.Stream) != (op.RequestBody != nil) {
			t.Errorf("%s: the route reads a body: %v; openapi.json documents one: %v", k, rt.Body, op.RequestBody != nil)
		}
		if _, ok := op.Responses["408"]; (routes[k].Body || routes[k].Stream) && !ok {
			t.Errorf("%s takes a body but does not document 408 (a body too slow to arrive)", k)
		}
		// Whatever reaches the database may find it down, and whatever
		// writes may find it full.
		if routes[k].handle != nil && !noDatabase[k] {
			if _, ok := op.Responses["503"]; !ok {
				t.Errorf("%s reaches the database but does not document 503", k)
			}
			if _, ok := op.Responses["507"]; !ok && routes[k].Method != "GET" {
				t.Errorf("%s writes but does not document 507", k)
			}
		}
	}
}

// noDatabase are the routes that never reach the database.
var noDatabase = map[string]bool{
	"GET /healthz":               true,
	"GET /metrics":               true,
	"GET /openapi.json":          true,
	"GET /.well-known/jwks.json": true,
}

var (
	operationIDPattern = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
	pathParamPattern   = regexp.MustCompile(`\{([^{}]+)\}`)
	statusPattern      = regexp.MustCompile(`^[1-5][0-9][0-9]$`)
	commentStatus      = regexp.MustCompile(`^\d{3}`)
)

// problemExceptions are error responses that are not problem+json.
var problemExceptions = map[string]bool{
	"GET /readyz 503": true, // a Health body, like the 200
}

func TestOpenAPIOperations(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	ops := doc.operations(t)
	seen := map[string]string{}
	for _, k := range sortedKeys(ops) {
		op := ops[k]
		t.Run(k, func(t *testing.T) {
			switch id := op.OperationID; {
			case !operationIDPattern.MatchString(id):
				t.Errorf("operationId %q is not camelCase", id)
			case seen[id] != "":
				t.Errorf("operationId %q is also the operationId of %s", id, seen[id])
			default:
				seen[id] = k
			}
			if len(op.Tags) == 0 || op.Summary == "" {
				t.Errorf("tags = %q, summary = %q; want both", op.Tags, op.Summary)
			}

			// Path parameters: exactly those of the template, each required.
			var want []string
			for _, m := range pathParamPattern.FindAllStringSubmatch(op.path, -1) {
				want = append(want, strings.TrimSuffix(m[1], "..."))
			}
			params := map[string]oaParameter{} // in+name -> parameter; the operation's override the path's
			for _, p := range append(slices.Clone(op.pathParams), op.Parameters...) {
				q, ok := doc.parameter(p)
				if !ok {
					t.Errorf("parameter %s does not resolve", p.Ref)
					continue
				}
				params[q.In+" "+q.Name] = q
			}
			var got []string
			for _, p := range params {
				if p.In != "path" {
					continue
				}
				got = append(got, p.Name)
				if !p.Required {
					t.Errorf("path parameter %s is not required", p.Name)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("path parameters of %s (-template +declared):\n%s", op.path, diff)
			}

			if len(op.Responses) == 0 {
				t.Fatal("no responses")
			}
			if op.RequestBody != nil {
				for _, status := range []string{"400", "413", "415"} {
					if _, ok := op.Responses[status]; !ok {
						t.Errorf("takes a request body but does not document %s", status)
					}
				}
				// Every body but a record's is decoded strictly.
				// (An archive is not JSON at all.)
				if !strings.Contains(op.path, "/records") && !strings.Contains(string(op.RequestBody), "application/octet-stream") &&
					!doc.closedBody(op.RequestBody) {
					t.Error("takes a control-plane body whose schema does not have additionalProperties: false")
				}
			}
			if _, ok := op.Responses["500"]; !ok {
				t.Error("does not document 500")
			}
			for _, status := range sortedKeys(op.Responses) {
				if !statusPattern.MatchString(status) {
					t.Errorf("response %q is not a status code", status)
					continue
				}
				resp, ok := doc.response(op.Responses[status])
				if !ok {
					t.Errorf("response %s: %s does not resolve", status, op.Responses[status].Ref)
					continue
				}
				if status < "400" || problemExceptions[k+" "+status] {
					continue
				}
				mt, ok := resp.Content["application/problem+json"]
				if !ok {
					t.Errorf("response %s is not application/problem+json", status)
					continue
				}
				if c := mt.Schema.Properties["status"].Const; c != nil && string(c) != status {
					t.Errorf("response %s is %s, a problem with status %s", status, op.Responses[status].Ref, c)
				}
			}
		})
	}
}

func TestOpenAPIRefs(t *testing.T) {
	t.Parallel()
	var root any
	if err := json.Unmarshal(openAPIDocument, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := resolvePointer(root, ref); err != "" {
					t.Errorf("%s: $ref %q: %s", at, ref, err)
				}
			}
			for k, e := range v {
				walk(e, at+"/"+k)
			}
		case []any:
			for i, e := range v {
				walk(e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(root, "#")
}

// resolvePointer resolves a local reference "#/a/b" in root. It returns a
// reason when it cannot.
func resolvePointer(root any, ref string) (any, string) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, "not a local reference"
	}
	v := root
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, "steps into a non-object before " + strconv.Quote(tok)
		}
		if v, ok = m[tok]; !ok {
			return nil, strconv.Quote(tok) + " does not exist"
		}
	}
	return v, ""
}

// problemCodes returns the Code constants declared in package problem, with
// the HTTP status their line comment starts with (0 if none).
func problemCodes(t *testing.T) map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "problem", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("find package problem: %v (%d files)", err, len(files))
	}
	codes := map[string]int{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				status := 0
				if vs.Comment != nil {
					status, _ = strconv.Atoi(commentStatus.FindString(vs.Comment.Text()))
				}
				for i, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: constant %s is not a string literal", fset.Position(v.Pos()), vs.Names[i])
					}
					code, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes[code] = status
				}
			}
		}
	}
	if len(codes) == 0 {
		t.Fatal("found no Code constants in package problem")
	}
	return codes
}

func TestOpenAPIProblemCodes(t *testing.T) {
	t.Parallel()
	codes := problemCodes(t)
	doc := loadOpenAPI(t)

	var problem oaSchema
	if err := json.Unmarshal(doc.Components.Schemas["Problem"], &problem); err != nil {
		t.Fatalf("components.schemas.Problem: %v", err)
	}
	var documented []string
	for _, c := range problem.Properties["code"].Enum {
		documented = append(documented, c.(string))
	}
	slices.Sort(documented)
	if diff := cmp.Diff(sortedKeys(codes), documented); diff != "" {
		t.Errorf("Problem.code enum differs from the problem.Code constants (-Go +openapi.json):\n%s", diff)
	}

	// Each problem response narrows status and code; the codes must exist
	// and, where problem.go says which status a code goes with, agree.
	for _, name := range sortedKeys(doc.Components.Responses) {
		mt, ok := doc.Components.Responses[name].Content["application/problem+json"]
		if !ok {
			continue
		}
		status, _ := strconv.Atoi(string(mt.Schema.Properties["status"].Const))
		for _, c := range mt.Schema.Properties["code"].Enum {
			code, _ := c.(string)
			want, ok := codes[code]
			switch {
			case !ok:
				t.Errorf("responses.%s: code %v is not a problem.Code", name, c)
			case want != 0 && want != status:
				t.Errorf("responses.%s: code %s has status %d in problem.go, not %d", name, code, want, status)
			}
		}
	}
}

// bodySchemas names the Go type behind each body schema. optional lists
// fields the schema may leave out although the Go field has no omitempty,
// because the server fills them in.
var bodySchemas = []struct {
	name     string
	goType   any
	optional []string
}{
	{"Tenant", core.Tenant{}, nil},
	{"TenantList", core.List[*core.Tenant]{}, nil},
	{"CreateTenant", core.CreateTenantParams{}, nil},
	{"UpdateTenant", core.UpdateTenantParams{}, nil},
	{"Plan", tenant.Plan{}, nil},
	{"PutPlan", tenant.Plan{}, []string{"name"}}, // defaults to the plan in the path
	{"PlanList", core.List[*tenant.Plan]{}, nil},
	{"User", core.User{}, nil},
	{"CreateUser", core.CreateUserParams{}, nil},
	{"UserList", core.List[*core.User]{}, nil},
	{"UpdateUser", core.UpdateUserParams{}, nil},
	{"Login", core.LoginParams{}, nil},
	{"Refresh", core.RefreshParams{}, nil},
	{"TokenPair", core.TokenPair{}, nil},
	{"TOTPEnrollment", core.TOTPEnrollment{}, nil},
	{"TOTPCode", core.TOTPCodeParams{}, nil},
	{"RecoveryCodes", core.RecoveryCodes{}, nil},
	{"AuthPolicy", core.AuthPolicy{}, nil},
	{"PutAuthPolicy", core.PutAuthPolicyParams{}, []string{"mfa_required_role"}}, // left out means none
	{"APIKey", core.APIKey{}, nil},
	{"NewAPIKey", core.NewAPIKey{}, nil},
	{"APIKeyList", core.List[*core.APIKey]{}, nil},
	{"CreateAPIKey", core.CreateAPIKeyParams{}, nil},
	{"PutOIDC", core.PutOIDCParams{}, nil},
	{"OIDCConfig", core.OIDCConfig{}, nil},
	{"Collection", core.Collection{}, nil},
	{"CollectionList", core.List[*core.Collection]{}, nil},
	{"PutCollection", core.PutCollectionParams{}, nil},
	{"Record", core.Record{}, nil},
	{"RecordList", core.RecordList{}, nil},
	{"Index", core.Index{}, nil},
	{"IndexSpec", core.IndexSpec{}, nil},
	{"AuditEntry", core.AuditEntry{}, nil},
	{"AuditList", core.List[core.AuditEntry]{}, nil},
	{"AuditVerification", core.AuditVerification{}, nil},
	{"Usage", core.Usage{}, nil},
	{"UsageHistory", core.UsageHistory{}, nil},
	{"UsageHour", core.UsageHour{}, nil},
	{"BreakGlassParams", core.BreakGlassParams{}, nil},
	{"BreakGlassGrant", core.BreakGlassGrant{}, nil},
	{"BreakGlassList", core.List[*core.BreakGlassGrant]{}, nil},
	{"Problem", problem.Details{}, nil},
	{"Job", core.Job{}, nil},
	{"JobProgress", core.JobProgress{}, nil},
	{"TenantHealth", tenantHealth{}, nil},
	{"TenantHealthList", tenantHealthList{}, nil},
	{"QuotaUse", quotaUse{}, nil},
	{"HealthSeries", healthSeries{}, nil},
	{"HealthPoint", healthPoint{}, nil},
}

// TestOpenAPISchemas compares each body schema with its Go struct: property
// names, required (the fields without omitempty), types and formats, and
// the same for nested structs.
func TestOpenAPISchemas(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	for _, bs := range bodySchemas {
		t.Run(bs.name, func(t *testing.T) {
			var s map[string]any
			if err := json.Unmarshal(doc.Components.Schemas[bs.name], &s); err != nil || s == nil {
				t.Fatalf("components.schemas.%s is missing or invalid: %v", bs.name, err)
			}
			compareSchema(t, doc, bs.name, s, reflect.TypeOf(bs.goType), bs.optional)
		})
	}
}

var timeType = reflect.TypeFor[time.Time]()

// jsonFields returns the JSON fields of struct type st, with embedded
// structs flattened as encoding/json does, and whether each is omitempty.
func jsonFields(st reflect.Type) (names []string, fields map[string]reflect.StructField, omitempty map[string]bool) {
	fields, omitempty = map[string]reflect.StructField{}, map[string]bool{}
	for _, f := range reflect.VisibleFields(st) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		fields[name] = f
		omitempty[name] = slices.Contains(strings.Split(opts, ","), "omitempty")
	}
	return names, fields, omitempty
}

func compareSchema(t *testing.T, doc *oaDoc, at string, s map[string]any, gt reflect.Type, optional []string) {
	t.Helper()
	for gt.Kind() == reflect.Pointer {
		gt = gt.Elem()
	}
	if s = doc.schema(s); s == nil {
		t.Errorf("%s: the $ref does not resolve", at)
		return
	}
	typ, _ := s["type"].(string)
	format, _ := s["format"].(string)
	want := ""
	switch {
	case gt == rawMessageType:
		return // any JSON
	case gt == timeType:
		want = "string"
		if format != "date-time" {
			t.Errorf("%s: format = %q, want date-time", at, format)
		}
	case gt.Kind() == reflect.String:
		want = "string"
	case gt.Kind() == reflect.Bool:
		want = "boolean"
	case gt.Kind() == reflect.Float32 || gt.Kind() == reflect.Float64:
		want = "number"
	case gt.Kind() >= reflect.Int && gt.Kind() <= reflect.Uint64:
		want = "integer"
		switch {
		case gt.Kind() == reflect.Int64 && format != "int64":
			t.Errorf("%s: format = %q, want int64 for a Go int64", at, format)
		case format != "int32" && format != "int64":
			t.Errorf("%s: format = %q, want int32 or int64: every integer says its size", at, format)
		}
	case gt.Kind() == reflect.Slice:
		want = "array"
		items, _ := s["items"].(map[string]any)
		if items == nil {
			t.Errorf("%s: an array without items", at)
		} else {
			compareSchema(t, doc, at+"[]", items, gt.Elem(), nil)
		}
	case gt.Kind() == reflect.Map:
		want = "object"
	case gt.Kind() == reflect.Struct:
		want = "object"
		compareObject(t, doc, at, s, gt, optional)
	default:
		t.Errorf("%s: no JSON type for Go type %s", at, gt)
		return
	}
	if typ != want {
		t.Errorf("%s: type = %q, want %q for Go type %s", at, typ, want, gt)
	}
}

func compareObject(t *testing.T, doc *oaDoc, at string, s map[string]any, st reflect.Type, optional []string) {
	t.Helper()
	names, fields, omitempty := jsonFields(st)
	props, _ := s["properties"].(map[string]any)
	var wantRequired, gotRequired, documented []string
	for _, name := range names {
		if !omitempty[name] && !slices.Contains(optional, name) {
			wantRequired = append(wantRequired, name)
		}
	}
	for name := range props {
		documented = append(documented, name)
	}
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			gotRequired = append(gotRequired, r.(string))
		}
	}
	for _, l := range [][]string{names, documented, wantRequired, gotRequired} {
		slices.Sort(l)
	}
	if diff := cmp.Diff(names, documented); diff != "" {
		t.Errorf("%s: properties differ from the JSON fields of %s (-Go +openapi.json):\n%s", at, st, diff)
	}
	if diff := cmp.Diff(wantRequired, gotRequired); diff != "" {
		t.Errorf("%s: required differs from the fields of %s without omitempty (-Go +openapi.json):\n%s", at, st, diff)
	}
	for _, name := range names {
		if p, ok := props[name].(map[string]any); ok {
			compareSchema(t, doc, at+"."+name, p, fields[name].Type, nil)
		}
	}
}
