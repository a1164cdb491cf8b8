package console

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// The API reference page: /openapi.json, read from the API in process and
// rendered server-side, operations grouped by tag. It is public, as
// /openapi.json is.

// openAPI is the part of an OpenAPI 3 document the reference shows.
type openAPI struct {
	Info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Tags []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tags"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]apiParam    `json:"parameters"`
		Responses  map[string]apiResponse `json:"responses"`
		Schemas    map[string]apiSchema   `json:"schemas"`
	} `json:"components"`
}

// apiOperation is one operation of the document.
type apiOperation struct {
	OperationID string                 `json:"operationId"`
	Tags        []string               `json:"tags"`
	Summary     string                 `json:"summary"`
	Description string                 `json:"description"`
	Parameters  []apiParam             `json:"parameters"`
	RequestBody *apiBody               `json:"requestBody"`
	Responses   map[string]apiResponse `json:"responses"`
	Security    *[]map[string][]string `json:"security"`

	// Filled in for the page.
	Method, Path string
	Public       bool
	Body         *schemaView
	Answers      []answerView
}

// apiParam is a parameter, or a $ref to one.
type apiParam struct {
	Ref         string     `json:"$ref"`
	Name        string     `json:"name"`
	In          string     `json:"in"`
	Required    bool       `json:"required"`
	Description string     `json:"description"`
	Schema      *apiSchema `json:"schema"`
}

// apiBody is a request body.
type apiBody struct {
	Description string                `json:"description"`
	Required    bool                  `json:"required"`
	Content     map[string]apiContent `json:"content"`
}

// apiContent is one media type of a body.
type apiContent struct {
	Schema *apiSchema `json:"schema"`
}

// apiResponse is a response, or a $ref to one.
type apiResponse struct {
	Ref         string                `json:"$ref"`
	Description string                `json:"description"`
	Content     map[string]apiContent `json:"content"`
}

// apiSchema is the part of a JSON Schema the reference shows.
type apiSchema struct {
	Ref         string                `json:"$ref"`
	Type        any                   `json:"type"`
	Format      string                `json:"format"`
	Description string                `json:"description"`
	Properties  map[string]*apiSchema `json:"properties"`
	Required    []string              `json:"required"`
	Items       *apiSchema            `json:"items"`
	Enum        []any                 `json:"enum"`
	OneOf       []*apiSchema          `json:"oneOf"`
	AllOf       []*apiSchema          `json:"allOf"`
	AnyOf       []*apiSchema          `json:"anyOf"`
}

// schemaView is a schema as the page shows it: a named reference, or a
// type with its properties one level deep.
type schemaView struct {
	Ref        string // the component's name, linked to its section
	Type       string
	Properties []propertyView
}

// propertyView is one property of a schema.
type propertyView struct {
	Name, Type, Ref, Description string
	Required                     bool
}

// answerView is one response of an operation.
type answerView struct {
	Status, Description string
	Schema              *schemaView
}

// tagView is a group of operations.
type tagView struct {
	Name, Description string
	Operations        []*apiOperation
}

// componentView is a named schema.
type componentView struct {
	Name, Description, Type string
	Properties              []propertyView
}

// apiRefData is the reference page's data.
type apiRefData struct {
	Title, Version, Description string
	Tags                        []tagView
	Schemas                     []componentView
}

// apiReference shows the API reference. The reference is built once, on
// first use: the document is part of the binary and does not change while
// it runs.
func (c *Console) apiReference(w http.ResponseWriter, r *http.Request) {
	s := c.sessionQuiet(r)
	c.apiRefMu.Lock()
	d := c.apiRef
	c.apiRefMu.Unlock()
	if d == nil {
		var doc openAPI
		if err := c.callWith(r, "", http.MethodGet, "/openapi.json", nil, &doc); err != nil {
			c.renderError(w, r, s, 0, err)
			return
		}
		d = buildAPIRef(&doc)
		c.apiRefMu.Lock()
		c.apiRef = d
		c.apiRefMu.Unlock()
	}
	c.render(w, r, http.StatusOK, "api", c.view(s, "API reference", "api", d))
}

// methodOrder orders an operation's methods as people read them.
var methodOrder = []string{"get", "post", "put", "patch", "delete"}

// buildAPIRef turns the document into the page's data.
func buildAPIRef(doc *openAPI) *apiRefData {
	d := &apiRefData{Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description}
	byTag := map[string]*tagView{}
	for _, t := range doc.Tags {
		d.Tags = append(d.Tags, tagView{Name: t.Name, Description: t.Description})
	}
	for i := range d.Tags {
		byTag[d.Tags[i].Name] = &d.Tags[i]
	}
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for _, m := range methodOrder {
			raw, ok := doc.Paths[p][m]
			if !ok {
				continue
			}
			var op apiOperation
			if json.Unmarshal(raw, &op) != nil {
				continue
			}
			op.Method, op.Path = strings.ToUpper(m), p
			op.Public = op.Security != nil && len(*op.Security) == 0
			for i, prm := range op.Parameters {
				if prm.Ref != "" {
					op.Parameters[i] = doc.Components.Parameters[refName(prm.Ref)]
				}
			}
			if op.RequestBody != nil {
				if ct, ok := op.RequestBody.Content["application/json"]; ok && ct.Schema != nil {
					op.Body = viewSchema(ct.Schema)
				}
			}
			statuses := make([]string, 0, len(op.Responses))
			for st := range op.Responses {
				statuses = append(statuses, st)
			}
			sort.Strings(statuses)
			for _, st := range statuses {
				resp := op.Responses[st]
				desc := resp.Description
				if resp.Ref != "" {
					base := doc.Components.Responses[refName(resp.Ref)]
					if desc == "" {
						desc = base.Description
					}
					resp.Content = base.Content
				}
				a := answerView{Status: st, Description: desc}
				for _, ct := range resp.Content {
					if ct.Schema != nil {
						a.Schema = viewSchema(ct.Schema)
						break
					}
				}
				op.Answers = append(op.Answers, a)
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			tv, ok := byTag[tag]
			if !ok {
				d.Tags = append(d.Tags, tagView{Name: tag})
				// Appending may move the slice: index the tags again.
				for i := range d.Tags {
					byTag[d.Tags[i].Name] = &d.Tags[i]
				}
				tv = byTag[tag]
			}
			tv.Operations = append(tv.Operations, &op)
		}
	}
	d.Tags = slices.DeleteFunc(d.Tags, func(t tagView) bool { return len(t.Operations) == 0 })
	names := make([]string, 0, len(doc.Components.Schemas))
	for n := range doc.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sc := doc.Components.Schemas[n]
		v := viewSchema(&sc)
		d.Schemas = append(d.Schemas, componentView{Name: n, Description: sc.Description, Type: v.Type, Properties: v.Properties})
	}
	return d
}

// refName is the last element of a "#/components/…/Name" reference.
func refName(ref string) string {
	return ref[strings.LastIndexByte(ref, '/')+1:]
}

// viewSchema describes a schema one level deep.
func viewSchema(s *apiSchema) *schemaView {
	if s.Ref != "" {
		return &schemaView{Ref: refName(s.Ref)}
	}
	v := &schemaView{Type: typeName(s)}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := s.Properties[n]
		pv := propertyView{Name: n, Description: p.Description, Required: slices.Contains(s.Required, n)}
		if p.Ref != "" {
			pv.Ref = refName(p.Ref)
		} else {
			pv.Type = typeName(p)
			if p.Items != nil && p.Items.Ref != "" {
				pv.Ref = refName(p.Items.Ref)
			}
		}
		v.Properties = append(v.Properties, pv)
	}
	return v
}

// typeName names a schema's type as "string (date-time)", "array of
// string", "one of: A, B", "object".
func typeName(s *apiSchema) string {
	if s == nil {
		return "any"
	}
	if s.Ref != "" {
		return refName(s.Ref)
	}
	var t string
	switch v := s.Type.(type) {
	case string:
		t = v
	case []any:
		parts := make([]string, 0, len(v))
		for _, p := range v {
			if ps, ok := p.(string); ok {
				parts = append(parts, ps)
			}
		}
		t = strings.Join(parts, " or ")
	}
	for _, alt := range [][]*apiSchema{s.OneOf, s.AnyOf, s.AllOf} {
		if len(alt) > 0 {
			names := make([]string, 0, len(alt))
			for _, a := range alt {
				names = append(names, typeName(a))
			}
			return "one of: " + strings.Join(names, ", ")
		}
	}
	if t == "array" {
		return "array of " + typeName(s.Items)
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	if len(s.Enum) > 0 {
		vals := make([]string, 0, len(s.Enum))
		for _, e := range s.Enum {
			b, _ := json.Marshal(e)
			vals = append(vals, string(b))
		}
		t += ": " + strings.Join(vals, " | ")
	}
	if t == "" {
		t = "any"
	}
	return t
}
