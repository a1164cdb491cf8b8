package recsql

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// StateDropping is the state of a declaration no longer declared whose
// physical index may still exist: pgstore keeps such rows, hidden from
// GetCollection, until BuildIndexes has dropped the index, so that writes
// it refuses meanwhile can still name it and a restarted node finds it.
const StateDropping store.IndexState = "dropping"

// Decl is a validated index declaration.
type Decl struct {
	Fields   []string // as declared
	Orders   []filter.Order
	Unique   bool
	Physical string
}

// Declare validates the indexes of collection of tenant tid and names their
// physical indexes. Two declarations may not share a name (their fields),
// and the collection's name must be inlinable.
func Declare(tid tenant.ID, collection store.CollectionName, idx []store.Index) ([]Decl, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	if !Inlinable(tid, collection) {
		return nil, fmt.Errorf("collection %q cannot have indexes: its name does not match %s", collection, collectionName)
	}
	decls := make([]Decl, 0, len(idx))
	names := make(map[string]bool, len(idx))
	for i := range idx {
		ix := &idx[i]
		orders, err := filter.ParseIndexFields(ix.Fields)
		if err != nil {
			return nil, fmt.Errorf("index %q: %w", ix.Name(), err)
		}
		if names[ix.Name()] {
			return nil, fmt.Errorf("index %q is declared twice", ix.Name())
		}
		names[ix.Name()] = true
		decls = append(decls, Decl{
			Fields:   slices.Clone(ix.Fields),
			Orders:   orders,
			Unique:   ix.Unique,
			Physical: PhysicalName(tid, collection, orders, ix.Unique),
		})
	}
	return decls, nil
}

// Physical index names are "bx_", 16 hex digits of a hash of the tenant,
// 16 of the tenant and collection, "_" and 16 of the whole declaration: 52
// bytes, within PostgreSQL's 63, and made of characters that need no
// quoting. The prefixes find a tenant's, or a collection's, physical
// indexes in the catalog.
const physicalPrefix = "bx_"

func hash16(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// TenantPrefix is the prefix of the names of tenant tid's physical indexes.
func TenantPrefix(tid tenant.ID) string { return physicalPrefix + hash16("tenant", string(tid)) }

// CollectionPrefix is the prefix of the names of the physical indexes of
// tenant tid's collection.
func CollectionPrefix(tid tenant.ID, collection store.CollectionName) string {
	return TenantPrefix(tid) + hash16("collection", string(tid), string(collection)) + "_"
}

// PhysicalName is the name of the physical index of a declaration.
func PhysicalName(tid tenant.ID, collection store.CollectionName, fields []filter.Order, unique bool) string {
	parts := []string{"index", string(tid), string(collection), fmt.Sprint(unique)}
	for _, f := range fields {
		dir := "+"
		if f.Desc {
			dir = "-"
		}
		parts = append(parts, dir+f.Field)
	}
	return CollectionPrefix(tid, collection) + hash16(parts...)
}

// IsPhysicalName reports whether name has the form of a physical index
// name, and so may be written into SQL as an identifier.
func IsPhysicalName(name string) bool {
	if len(name) != len(physicalPrefix)+16+16+1+16 || !strings.HasPrefix(name, physicalPrefix) {
		return false
	}
	for i, c := range []byte(name[len(physicalPrefix):]) {
		if i == 32 {
			if c != '_' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Row is an index declaration as stored.
type Row struct {
	Physical string
	Fields   []string
	Unique   bool
	Position int
	State    store.IndexState
	Error    string
}

// Name is the declaration's Index.Name.
func (r *Row) Name() string { return strings.Join(r.Fields, ",") }

// Index returns the declaration as GetCollection answers it.
func (r *Row) Index() store.Index {
	return store.Index{Fields: slices.Clone(r.Fields), Unique: r.Unique, State: r.State, Error: r.Error}
}

// Orders parses the row's fields.
func (r *Row) Orders() ([]filter.Order, error) { return filter.ParseIndexFields(r.Fields) }

// EncodeFields is the stored form of an index's fields: a JSON array.
func EncodeFields(fields []string) string {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err) // strings always marshal
	}
	return string(b)
}

// DecodeFields reads EncodeFields' form.
func DecodeFields(s string) ([]string, error) {
	var fields []string
	if err := json.Unmarshal([]byte(s), &fields); err != nil {
		return nil, fmt.Errorf("stored index fields %q: %w", s, err)
	}
	return fields, nil
}

// EncodeEncrypted is the stored form of a collection's encrypted fields: a
// JSON array, "[]" for none.
func EncodeEncrypted(fields []string) string {
	if len(fields) == 0 {
		return "[]"
	}
	return EncodeFields(fields)
}

// DecodeEncrypted reads EncodeEncrypted's form; none is nil.
func DecodeEncrypted(s string) ([]string, error) {
	fields, err := DecodeFields(s)
	if len(fields) == 0 {
		return nil, err
	}
	return fields, err
}

// Changes are what PutCollection writes to bring a collection's stored
// declarations in line with its new ones.
type Changes struct {
	// Insert are new declarations, in state building.
	Insert []Row
	// Update are declarations kept, with their new position and state.
	Update []Row
	// Remove are declarations no longer declared (rows in StateDropping
	// excluded: they already are).
	Remove []Row
}

// Merge compares the stored declarations old with the new ones: a
// declaration with the same fields and uniqueness keeps its state, unless
// that state is failed (declaring it again retries) or dropping (it is
// declared again); others are new.
func Merge(old []Row, decls []Decl) Changes {
	var ch Changes
	byName := make(map[string]*Row, len(old))
	for i := range old {
		byName[old[i].Physical] = &old[i]
	}
	kept := make(map[string]bool, len(decls))
	for i, d := range decls {
		kept[d.Physical] = true
		r, ok := byName[d.Physical]
		if !ok {
			ch.Insert = append(ch.Insert, Row{Physical: d.Physical, Fields: slices.Clone(d.Fields), Unique: d.Unique,
				Position: i, State: store.IndexBuilding})
			continue
		}
		nr := *r
		nr.Position = i
		nr.Fields = slices.Clone(d.Fields)
		if nr.State == store.IndexFailed || nr.State == StateDropping {
			nr.State, nr.Error = store.IndexBuilding, ""
		}
		if nr.Position != r.Position || nr.State != r.State || nr.Error != r.Error {
			ch.Update = append(ch.Update, nr)
		}
	}
	for _, r := range old {
		if !kept[r.Physical] && r.State != StateDropping {
			ch.Remove = append(ch.Remove, r)
		}
	}
	return ch
}

// Indexes returns the declarations of rows that GetCollection shows, in
// declared order; nil if there are none.
func Indexes(rows []Row) []store.Index {
	var out []store.Index
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b Row) int { return a.Position - b.Position })
	for i := range rows {
		if rows[i].State != StateDropping {
			out = append(out, rows[i].Index())
		}
	}
	return out
}

// DuplicatesReason is Index.Error for a unique index whose build found
// equal values in two records.
const DuplicatesReason = "records of the collection hold equal values in the index's fields"
