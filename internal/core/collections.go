package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

var collectionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Limits of declared indexes.
const (
	// MaxIndexes is how many indexes a collection may declare.
	MaxIndexes = 8
	// MaxIndexFields is how many fields one index may have.
	MaxIndexFields = 4
)

// PutCollectionParams is the body of PUT …/collections/{collection}.
type PutCollectionParams struct {
	// Schema is a JSON Schema (draft 2020-12 unless it says otherwise) that
	// every record must satisfy; absent or null means any object.
	Schema json.RawMessage `json:"schema,omitempty"`
	// EncryptedFields are top-level fields stored only sealed under the
	// tenant's data key; equality filters on them use a blind index. They
	// are fixed when the collection is created: declaring other ones for
	// an existing collection is refused.
	EncryptedFields []string `json:"encrypted_fields,omitempty"`
	// Indexes are the collection's secondary indexes. Declaring the same
	// list again keeps them; an index left out is dropped.
	Indexes []IndexSpec `json:"indexes,omitempty"`
	// Retention, such as "90d", "12h" or "30m", is how long records are
	// kept, counted from RetentionField; absent keeps them for ever. See
	// retention.go.
	Retention *string `json:"retention,omitempty"`
	// RetentionField is created_at (the default), updated_at or a
	// top-level data field holding an RFC 3339 timestamp.
	RetentionField *string `json:"retention_field,omitempty"`
}

// IndexSpec declares one index.
type IndexSpec struct {
	// Fields are top-level data keys or id, created_at and updated_at,
	// each optionally prefixed with "-" for descending order.
	Fields []string `json:"fields"`
	// Unique makes the fields' values unique within the collection.
	Unique bool `json:"unique,omitempty"`
}

// PutCollection creates a collection or replaces its schema and indexes.
// Existing records are not re-validated; new writes are. New indexes are
// built after the answer, as batch work of the tenant; until then they are
// in state building.
func (s *Scope) PutCollection(ctx context.Context, name store.CollectionName, p PutCollectionParams) (*Collection, error) {
	if err := s.allow(access.PutCollection); err != nil {
		return nil, err
	}
	if !collectionPattern.MatchString(string(name)) {
		return nil, invalid("collection", "collection names match ^[a-z][a-z0-9_]{0,62}$")
	}
	schema, err := compactSchema(p.Schema)
	if err != nil {
		return nil, err
	}
	fields := openFields
	if schema != nil {
		if _, err := compileSchema(schema); err != nil {
			return nil, err
		}
		fields = fieldsOf(schema)
	}
	indexes, err := validIndexes(p.Indexes, fields)
	if err != nil {
		return nil, err
	}
	encrypted, err := validEncryptedFields(p.EncryptedFields, fields, p.Indexes)
	if err != nil {
		return nil, err
	}
	keep, keepField, err := validRetention(&p, fields, encrypted)
	if err != nil {
		return nil, err
	}
	if len(encrypted) > 0 {
		// The tenant's keys are made now, so that a collection that could
		// not hold a record is never created.
		if _, err := s.core.keySet(ctx, s.tenant.ID); err != nil {
			return nil, err
		}
	}
	now := s.core.now()
	col := &store.Collection{Name: name, Schema: schema, Indexes: indexes, EncryptedFields: encrypted, CreatedAt: now, UpdatedAt: now,
		Retention: keep, RetentionField: keepField}
	build := false // whether an index is to be built or dropped
	err = s.write(ctx, func(tx store.Tx) error {
		if old, err := tx.GetCollection(ctx, name); err == nil {
			build = dropsIndexes(old.Indexes, indexes)
			col.EncryptedFields = old.EncryptedFields
			if !slices.Equal(slices.Sorted(slices.Values(old.EncryptedFields)), slices.Sorted(slices.Values(encrypted))) {
				return &Error{Kind: KindConflict, Field: "encrypted_fields", Pos: -1,
					Detail: "the encrypted fields of an existing collection cannot change; declare the same ones, or create another collection"}
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := tx.PutCollection(ctx, col); err != nil {
			return err
		}
		stored, err := tx.GetCollection(ctx, name)
		if err != nil {
			return err
		}
		col = stored
		for _, ix := range col.Indexes {
			build = build || ix.State == store.IndexBuilding
		}
		return s.append(ctx, tx, s.event("collection.put", "collection:"+string(name)))
	})
	s.core.encFields.Delete(encFieldsKey{s.tenant.ID, name})
	if err != nil {
		return nil, err
	}
	if build {
		s.core.buildIndexes(ctx, s.tenant.ID, name)
	}
	return collectionView(col), nil
}

// dropsIndexes reports whether declaring next in place of old drops an
// index of old, whose physical index the build then removes.
func dropsIndexes(old, next []store.Index) bool {
	for _, o := range old {
		if !slices.ContainsFunc(next, func(n store.Index) bool { return n.Name() == o.Name() && n.Unique == o.Unique }) {
			return true
		}
	}
	return false
}

// validIndexes checks declared indexes against the limits and the fields
// the collection's schema can hold.
func validIndexes(specs []IndexSpec, fields fieldSet) ([]store.Index, error) {
	if len(specs) > MaxIndexes {
		return nil, invalid("indexes", fmt.Sprintf("a collection has at most %d indexes", MaxIndexes))
	}
	out := make([]store.Index, 0, len(specs))
	seen := map[string]bool{}
	for i, sp := range specs {
		at := fmt.Sprintf("indexes[%d].fields", i)
		if len(sp.Fields) == 0 || len(sp.Fields) > MaxIndexFields {
			return nil, invalid(at, fmt.Sprintf("an index has 1 to %d fields", MaxIndexFields))
		}
		names := map[string]bool{}
		for j, f := range sp.Fields {
			o, err := filter.ParseOrder(f)
			if err != nil || strings.HasPrefix(f, "+") {
				return nil, invalid(fmt.Sprintf("%s[%d]", at, j),
					`an index field is a field name, optionally prefixed with "-" for descending order`)
			}
			if names[o.Field] {
				return nil, invalid(fmt.Sprintf("%s[%d]", at, j), "an index names each field once")
			}
			names[o.Field] = true
			if !fields.holds(o.Field) {
				return nil, &Error{Kind: KindUnknownField, Field: fmt.Sprintf("%s[%d]", at, j), Pos: -1,
					Detail: fmt.Sprintf("the collection's schema has no field %q", o.Field)}
			}
		}
		ix := store.Index{Fields: slices.Clone(sp.Fields), Unique: sp.Unique}
		if seen[ix.Name()] {
			return nil, invalid(at, "two indexes have the same fields")
		}
		seen[ix.Name()] = true
		out = append(out, ix)
	}
	return out, nil
}

// GetCollection returns one of the tenant's collections, with the state of
// each of its indexes.
func (s *Scope) GetCollection(ctx context.Context, name store.CollectionName) (*Collection, error) {
	if err := s.allow(access.ListCollections); err != nil {
		return nil, err
	}
	if !validRef(name, "") {
		return nil, store.ErrNotFound
	}
	var col *store.Collection
	err := s.read(ctx, func(tx store.Tx) (err error) {
		col, err = tx.GetCollection(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return collectionView(col), nil
}

// DeleteCollection removes a collection with its records and indexes.
func (s *Scope) DeleteCollection(ctx context.Context, name store.CollectionName) error {
	if err := s.allow(access.PutCollection); err != nil {
		return err
	}
	if !validRef(name, "") {
		return store.ErrNotFound
	}
	indexed := false
	err := s.write(ctx, func(tx store.Tx) error {
		old, err := tx.GetCollection(ctx, name)
		if err != nil {
			return err
		}
		indexed = len(old.Indexes) > 0
		if err := tx.DeleteCollection(ctx, name); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("collection.delete", "collection:"+string(name)))
	})
	s.core.encFields.Delete(encFieldsKey{s.tenant.ID, name})
	if err != nil {
		return err
	}
	if indexed {
		// Drops the physical indexes the collection had.
		s.core.buildIndexes(ctx, s.tenant.ID, name)
	}
	return nil
}

// ListCollections lists the tenant's collections by name.
func (s *Scope) ListCollections(ctx context.Context) (*List[*Collection], error) {
	if err := s.allow(access.ListCollections); err != nil {
		return nil, err
	}
	var cols []*store.Collection
	err := s.read(ctx, func(tx store.Tx) (err error) {
		cols, err = tx.ListCollections(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	page := &List[*Collection]{Items: make([]*Collection, 0, len(cols))}
	for _, col := range cols {
		page.Items = append(page.Items, collectionView(col))
	}
	return page, nil
}

// buildIndexes builds the collection's pending indexes in the background,
// as batch work of the tenant under the scheduler of the request that
// declared them, if it had one. A build that is shed or fails for the
// database's sake is retried a few times; whatever is left is resumed by
// ResumeIndexBuilds when a node starts.
func (c *Core) buildIndexes(ctx context.Context, tid tenant.ID, col store.CollectionName) {
	ticket, scheduled := fairq.TicketFrom(ctx)
	c.builds.Add(1)
	go func() {
		defer c.builds.Done()
		for attempt := range 5 {
			bctx, cancel := context.WithTimeout(c.life, time.Hour)
			if scheduled {
				ticket.Class, ticket.Wait = fairq.Batch, time.Minute
				bctx = fairq.WithTicket(bctx, ticket)
			}
			err := c.store.BuildIndexes(bctx, tid, col)
			cancel()
			if err == nil || errors.Is(err, store.ErrNotFound) || c.life.Err() != nil {
				return
			}
			var shed *fairq.ShedError
			if !errors.Is(err, store.ErrUnavailable) && !errors.As(err, &shed) && !errors.Is(err, context.DeadlineExceeded) {
				// Not the database's passing trouble: retrying would not help.
				c.log.Error("index build failed", "tenant", string(tid), "collection", string(col), "err", err)
				return
			}
			c.log.Warn("index build failed; retrying", "tenant", string(tid), "collection", string(col), "attempt", attempt+1, "err", err)
			select {
			case <-time.After(time.Duration(attempt+1) * time.Second):
			case <-c.life.Done():
				return
			}
		}
	}()
}

// ResumeIndexBuilds builds the indexes that a stopped node left building.
// App calls it at start.
func (c *Core) ResumeIndexBuilds(ctx context.Context) error {
	builds, err := c.store.PendingIndexBuilds(ctx)
	if err != nil {
		return err
	}
	for _, b := range builds {
		c.buildIndexes(context.Background(), b.Tenant, b.Collection)
	}
	return nil
}

// fieldSet is what fields a collection's records can hold, as far as its
// schema tells: filters, orders and indexes may name only those (and the
// system fields).
type fieldSet struct {
	// open means any field: the collection has no schema, or its schema
	// does not list its properties or allows others.
	open     bool
	names    map[string]bool
	patterns []*regexp.Regexp
}

var openFields = fieldSet{open: true}

func (f fieldSet) holds(field string) bool {
	if f.open || filter.IsSystem(field) || f.names[field] {
		return true
	}
	for _, re := range f.patterns {
		if re.MatchString(field) {
			return true
		}
	}
	return false
}

// fieldsOf reads the top level of a compiled-and-valid schema. A schema
// that lists properties or patternProperties holds those fields only,
// unless additionalProperties is true or a schema (it may then hold any
// field): listing them is how a collection declares its fields, and a
// filter on any other field is a typo.
func fieldsOf(schema json.RawMessage) fieldSet {
	var top struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		PatternProperties    map[string]json.RawMessage `json:"patternProperties"`
		AdditionalProperties json.RawMessage            `json:"additionalProperties"`
	}
	if json.Unmarshal(schema, &top) != nil || top.Properties == nil && top.PatternProperties == nil {
		return openFields
	}
	if ap := strings.TrimSpace(string(top.AdditionalProperties)); ap != "" && ap != "false" {
		return openFields
	}
	f := fieldSet{names: map[string]bool{}}
	for name := range top.Properties {
		f.names[name] = true
	}
	for pat := range top.PatternProperties {
		re, err := regexp.Compile(pat)
		if err != nil {
			return openFields // an ECMA-262 pattern Go cannot read: do not guess
		}
		f.patterns = append(f.patterns, re)
	}
	return f
}

// checkFields returns an unknown_field Error for the first field of expr or
// order that fields cannot hold.
func checkFields(fields fieldSet, expr filter.Expr, order filter.Order) error {
	if fields.open {
		return nil
	}
	var bad *Error
	var walk func(e filter.Expr)
	walk = func(e filter.Expr) {
		switch e := e.(type) {
		case *filter.And:
			if e != nil {
				for _, t := range e.Terms {
					walk(t)
				}
			}
		case *filter.Or:
			if e != nil {
				for _, t := range e.Terms {
					walk(t)
				}
			}
		case *filter.Cmp:
			if e != nil && bad == nil && !fields.holds(e.Field) {
				bad = &Error{Kind: KindUnknownField, Field: "filter", Pos: e.Pos,
					Detail: fmt.Sprintf("the collection's schema has no field %q", e.Field)}
			}
		}
	}
	walk(expr)
	if bad != nil {
		return bad
	}
	if order.Field != "" && !fields.holds(order.Field) {
		return &Error{Kind: KindUnknownField, Field: "order", Pos: -1,
			Detail: fmt.Sprintf("the collection's schema has no field %q", order.Field)}
	}
	return nil
}
