package recsql

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const tid tenant.ID = "0b5e7d3c-2f6a-4c1e-9d8b-7a6f5e4d3c2b"

func TestPhysicalNames(t *testing.T) {
	a := []filter.Order{{Field: "a"}}
	aDesc := []filter.Order{{Field: "a", Desc: true}}
	names := map[string]string{
		"a":              PhysicalName(tid, "c", a, false),
		"-a":             PhysicalName(tid, "c", aDesc, false),
		"a unique":       PhysicalName(tid, "c", a, true),
		"other coll":     PhysicalName(tid, "d", a, false),
		"other tenant":   PhysicalName("1b5e7d3c-2f6a-4c1e-9d8b-7a6f5e4d3c2b", "c", a, false),
		"a,b":            PhysicalName(tid, "c", []filter.Order{{Field: "a"}, {Field: "b"}}, false),
		"ab (one field)": PhysicalName(tid, "c", []filter.Order{{Field: "ab"}}, false),
	}
	seen := map[string]string{}
	for what, name := range names {
		if other, ok := seen[name]; ok {
			t.Errorf("%s and %s share the physical name %s", what, other, name)
		}
		seen[name] = what
		if !IsPhysicalName(name) || len(name) > 63 {
			t.Errorf("%s: %q is not a valid physical name", what, name)
		}
	}
	if !strings.HasPrefix(names["a"], CollectionPrefix(tid, "c")) || !strings.HasPrefix(names["a"], TenantPrefix(tid)) {
		t.Errorf("%s lacks its collection's or tenant's prefix", names["a"])
	}
	if strings.HasPrefix(names["other coll"], CollectionPrefix(tid, "c")) {
		t.Error("another collection's index has the collection's prefix")
	}
	for _, bad := range []string{"", "bx_", "records_created_at", strings.ToUpper(names["a"]), names["a"] + "0", `bx_"; DROP TABLE records; --`} {
		if IsPhysicalName(bad) {
			t.Errorf("IsPhysicalName(%q) = true", bad)
		}
	}
}

func TestDeclare(t *testing.T) {
	decls, err := Declare(tid, "people", []store.Index{{Fields: []string{"email"}, Unique: true}, {Fields: []string{"-n", "id"}}})
	if err != nil || len(decls) != 2 || !decls[0].Unique || decls[1].Orders[0] != (filter.Order{Field: "n", Desc: true}) {
		t.Fatalf("Declare = %+v, %v", decls, err)
	}
	for name, tc := range map[string]struct {
		collection store.CollectionName
		idx        []store.Index
	}{
		"bad collection name": {"People", []store.Index{{Fields: []string{"a"}}}},
		"no fields":           {"people", []store.Index{{}}},
		"same name twice":     {"people", []store.Index{{Fields: []string{"a"}}, {Fields: []string{"a"}, Unique: true}}},
		"bad field":           {"people", []store.Index{{Fields: []string{"a-b"}}}},
	} {
		if _, err := Declare(tid, tc.collection, tc.idx); err == nil {
			t.Errorf("Declare(%s) = nil error", name)
		}
	}
	if decls, err := Declare(tid, "Any Name", nil); decls != nil || err != nil {
		t.Errorf("Declare(no indexes) = %v, %v", decls, err)
	}
}

func TestMerge(t *testing.T) {
	row := func(name string, pos int, state store.IndexState) Row {
		return Row{Physical: name, Fields: []string{name}, Position: pos, State: state}
	}
	decl := func(name string) Decl { return Decl{Physical: name, Fields: []string{name}} }
	old := []Row{
		row("ready", 0, store.IndexReady),
		row("failed", 1, store.IndexFailed),
		row("dropping", 2, StateDropping),
		row("gone", 3, store.IndexBuilding),
		row("stale", 4, StateDropping),
	}
	got := Merge(old, []Decl{decl("new"), decl("failed"), decl("ready"), decl("dropping")})
	want := Changes{
		Insert: []Row{row("new", 0, store.IndexBuilding)},
		Update: []Row{row("failed", 1, store.IndexBuilding), row("ready", 2, store.IndexReady), row("dropping", 3, store.IndexBuilding)},
		Remove: []Row{row("gone", 3, store.IndexBuilding)},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Merge (-want +got):\n%s", d)
	}
	// Unchanged declarations change nothing.
	if got := Merge([]Row{row("a", 0, store.IndexReady)}, []Decl{decl("a")}); len(got.Insert)+len(got.Update)+len(got.Remove) != 0 {
		t.Errorf("Merge(unchanged) = %+v", got)
	}
	ixs := Indexes([]Row{row("b", 1, store.IndexReady), row("x", 0, StateDropping), row("a", 0, store.IndexBuilding)})
	if d := cmp.Diff([]store.Index{{Fields: []string{"a"}, State: store.IndexBuilding}, {Fields: []string{"b"}, State: store.IndexReady}}, ixs); d != "" {
		t.Errorf("Indexes (-want +got):\n%s", d)
	}
	if Indexes(nil) != nil {
		t.Error("Indexes(nil) is not nil")
	}
}
