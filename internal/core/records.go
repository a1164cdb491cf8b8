package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// validRef reports whether a collection name and record id from a path could
// name a record at all; callers answer store.ErrNotFound when they cannot.
func validRef(col store.CollectionName, id store.RecordID) bool {
	if !collectionPattern.MatchString(string(col)) {
		return false
	}
	if id == "" {
		return true
	}
	return canonicalUUID(string(id))
}

// canonicalUUID reports whether s is a UUID in the canonical form the
// server generates ids in, the form tenant IDs have: any other spelling is
// no id of ours.
func canonicalUUID(s string) bool {
	_, ok := tenant.ID(s).Bytes()
	return ok
}

// CreateRecord stores a JSON object in a collection of the tenant.
func (s *Scope) CreateRecord(ctx context.Context, col store.CollectionName, body []byte, idem *Idempotency) (*Record, error) {
	if err := s.allow(access.CreateRecord); err != nil {
		return nil, err
	}
	if !validRef(col, "") {
		return nil, store.ErrNotFound
	}
	doc, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	data, err := encodeCompact(doc)
	if err != nil {
		return nil, err
	}
	now := s.core.now()
	var view *Record
	err = s.withCipher(ctx, col, func(fc *fieldCipher) error {
		view = nil
		idemAAD := []byte("bulkhead idempotent response\x00" + string(s.tenant.ID) + "\x00" + string(col))
		return s.write(ctx, func(tx store.Tx) error {
			var err error
			if view, err = replaySealed[*Record](ctx, tx, idem, now, fc.responseKeys(), idemAAD); err != nil || view != nil {
				return err
			}
			c, err := s.core.validateRecord(ctx, tx, col, doc)
			if err != nil {
				return err
			}
			if err := fc.check(c); err != nil {
				return err
			}
			r := &store.Record{Collection: col, ID: store.RecordID(newID()), Version: 1, CreatedAt: now, UpdatedAt: now}
			stored := data
			if fc != nil {
				sealed := maps.Clone(doc)
				if err := fc.seal(r.ID, sealed); err != nil {
					return err
				}
				if stored, err = encodeCompact(sealed); err != nil {
					return err
				}
			}
			r.Data = stored
			if err := tx.CreateRecord(ctx, r); err != nil {
				return err
			}
			if err := checkQuota(ctx, tx, &s.plan); err != nil {
				return err
			}
			view = recordView(r)
			view.Data = data // the plaintext, to the client only
			if err := s.appendRecordEvent(ctx, tx, "record.create", r); err != nil {
				return err
			}
			return rememberSealed(ctx, tx, idem, now, view, fc.responseKeys(), idemAAD)
		})
	})
	return view, err
}

// validateRecord checks doc, in clear, against the collection's schema and
// returns the collection. It returns store.ErrNotFound if the collection
// does not exist.
func (c *Core) validateRecord(ctx context.Context, tx store.Tx, name store.CollectionName, doc map[string]any) (*store.Collection, error) {
	col, err := tx.GetCollection(ctx, name)
	if err != nil {
		return nil, err
	}
	if col.Schema == nil {
		return col, nil
	}
	sch, err := c.schemas.get(tx.Tenant(), col)
	if err != nil {
		return nil, err
	}
	return col, validateAgainst(sch, doc)
}

func (s *Scope) appendRecordEvent(ctx context.Context, tx store.Tx, action string, r *store.Record) error {
	return s.append(ctx, tx, s.event(action, "record:"+string(r.Collection)+"/"+string(r.ID)))
}

// checkQuota fails the transaction if the write it just made took the
// tenant over its plan's record or byte quota. It reads the usage after the
// write, in the same transaction, which holds the usage row: concurrent
// writers of the tenant cannot both slip under the cap.
func checkQuota(ctx context.Context, tx store.Tx, plan *tenant.Plan) error {
	if plan.MaxRecords == 0 && plan.MaxBytes == 0 {
		return nil
	}
	u, err := tx.Usage(ctx)
	if err != nil {
		return err
	}
	switch {
	case plan.MaxRecords > 0 && u.Records > plan.MaxRecords:
		return refuse(KindQuotaExceeded, fmt.Sprintf("the %s plan holds at most %d records", plan.Name, plan.MaxRecords))
	case plan.MaxBytes > 0 && u.Bytes > plan.MaxBytes:
		return refuse(KindQuotaExceeded, fmt.Sprintf("the %s plan holds at most %d bytes of records", plan.Name, plan.MaxBytes))
	}
	return nil
}

// GetRecord returns one record of the tenant.
func (s *Scope) GetRecord(ctx context.Context, col store.CollectionName, id store.RecordID) (*Record, error) {
	if err := s.allow(access.ReadRecord); err != nil {
		return nil, err
	}
	if !validRef(col, id) {
		return nil, store.ErrNotFound
	}
	var r *store.Record
	err := s.read(ctx, func(tx store.Tx) (err error) {
		r, err = tx.GetRecord(ctx, col, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(r.Data, sealedMark) {
		return recordView(r), nil // nothing sealed: nothing to open, whatever the collection
	}
	// The collection's encrypted fields as this node last saw them open
	// the record if they fit it: every sealed value it holds is of one of
	// them, opens under its place (tenant, collection, record id, field),
	// and none of them is stored in clear. A stale answer (the collection
	// was deleted and made again with other fields) cannot fit a record
	// of the new collection, whose ids are new: the record is then read
	// again beside its collection, which decides.
	fields, err := s.core.encryptedFieldsOf(ctx, s.tenant.ID, col)
	if err != nil {
		return nil, err
	}
	if len(fields) > 0 {
		if fc, err := s.core.cipherFor(ctx, s.tenant.ID, col, fields); err == nil {
			if data, ok, err := fc.openRaw(r.ID, r.Data); err == nil && ok {
				out := *r
				out.Data = data
				return recordView(&out), nil
			}
		}
		s.core.encFields.Delete(encFieldsKey{s.tenant.ID, col})
	}
	// Otherwise the record is read again beside its collection. A
	// collection remembered as having no encrypted fields keeps that
	// memory: it is read beside each of its records that holds an encKey
	// member (rare: a plain collection's record may use the key).
	var encrypted []string
	err = s.read(ctx, func(tx store.Tx) (err error) {
		if r, err = tx.GetRecord(ctx, col, id); err != nil {
			return err
		}
		if !bytes.Contains(r.Data, sealedMark) {
			return nil
		}
		c, err := tx.GetCollection(ctx, col)
		if err != nil {
			return err
		}
		encrypted = c.EncryptedFields
		return nil
	})
	if err != nil {
		return nil, err
	}
	fc, err := s.core.cipherFor(ctx, s.tenant.ID, col, encrypted)
	if err != nil {
		return nil, err
	}
	if r, err = fc.open(r); err != nil {
		return nil, err
	}
	return recordView(r), nil
}

// UpdateRecord applies a JSON merge patch (RFC 7386) to a record. ifVersion,
// when not zero, must be the record's current version (else
// store.ErrVersionMismatch).
func (s *Scope) UpdateRecord(ctx context.Context, col store.CollectionName, id store.RecordID, patch []byte, ifVersion int64) (*Record, error) {
	if err := s.allow(access.UpdateRecord); err != nil {
		return nil, err
	}
	if !validRef(col, id) {
		return nil, store.ErrNotFound
	}
	p, err := decodeObject(patch)
	if err != nil {
		return nil, err
	}
	now := s.core.now()
	var view *Record
	err = s.withCipher(ctx, col, func(fc *fieldCipher) error {
		return s.write(ctx, func(tx store.Tx) error {
			cur, err := tx.GetRecord(ctx, col, id)
			if err != nil {
				return err
			}
			if ifVersion != 0 && ifVersion != cur.Version {
				return store.ErrVersionMismatch
			}
			doc, err := decodeObject(cur.Data)
			if err != nil {
				return err
			}
			if fc != nil {
				if err := fc.openDoc(id, doc); err != nil {
					return err
				}
			}
			mergePatch(doc, p)
			c, err := s.core.validateRecord(ctx, tx, col, doc)
			if err != nil {
				return err
			}
			if err := fc.check(c); err != nil {
				return err
			}
			plain, err := encodeCompact(doc)
			if err != nil {
				return err
			}
			data := plain
			if fc != nil {
				if err := fc.seal(id, doc); err != nil {
					return err
				}
				if data, err = encodeCompact(doc); err != nil {
					return err
				}
			}
			r, err := tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: col, ID: id, IfVersion: cur.Version, Data: data, UpdatedAt: now})
			if err != nil {
				return err
			}
			if len(data) > len(cur.Data) {
				if err := checkQuota(ctx, tx, &s.plan); err != nil {
					return err
				}
			}
			view = recordView(r)
			view.Data = plain
			return s.appendRecordEvent(ctx, tx, "record.update", r)
		})
	})
	return view, err
}

// DeleteRecord deletes a record, with the same version check as
// UpdateRecord.
func (s *Scope) DeleteRecord(ctx context.Context, col store.CollectionName, id store.RecordID, ifVersion int64) error {
	if err := s.allow(access.DeleteRecord); err != nil {
		return err
	}
	if !validRef(col, id) {
		return store.ErrNotFound
	}
	return s.write(ctx, func(tx store.Tx) error {
		r, err := tx.DeleteRecord(ctx, col, id, ifVersion)
		if err != nil {
			return err
		}
		return s.appendRecordEvent(ctx, tx, "record.delete", r)
	})
}

// ListQuery selects records: the query parameters of a record listing.
type ListQuery struct {
	Filter string
	Order  string
	Limit  int
	Cursor string
	// Count asks for the number of records matching the filter, in Total.
	Count bool
}

// Limits of a listing page.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// ListRecords returns one page of a collection's records. The cursor it
// returns opens only for the same tenant, collection, filter and order.
func (s *Scope) ListRecords(ctx context.Context, col store.CollectionName, q ListQuery) (*RecordList, error) {
	if err := s.allow(access.ReadRecord); err != nil {
		return nil, err
	}
	if !validRef(col, "") {
		return nil, store.ErrNotFound
	}
	expr, err := filter.Parse(q.Filter)
	var se *filter.SyntaxError
	if errors.As(err, &se) {
		return nil, &Error{Kind: KindInvalidFilter, Field: "filter", Detail: "filter " + se.Error(), Pos: se.Pos}
	}
	if err != nil {
		return nil, err
	}
	order, err := filter.ParseOrder(q.Order)
	if err != nil {
		return nil, invalid("order", `order must be a field name, optionally prefixed with "-" for descending`)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		return nil, invalid("limit", "limit must be between 1 and 1000")
	}
	params := &store.ListRecordsParams{Collection: col, Filter: expr, Order: order, Limit: q.Limit, Count: q.Count}
	binding := "records\x00" + string(col) + "\x00" + q.Filter + "\x00" + q.Order
	if q.Cursor != "" {
		var key store.RecordKey
		if err := s.core.openCursor(q.Cursor, string(s.tenant.ID), binding, &key); err != nil {
			return nil, err
		}
		params.After = &key
	}
	var page *store.RecordPage
	var fc *fieldCipher
	err = s.withCipher(ctx, col, func(f *fieldCipher) error {
		fc = f
		if fc.holds(order.Field) {
			return encryptedFieldError("order", -1, fmt.Sprintf("%q is an encrypted field: records cannot be ordered by it", order.Field))
		}
		p := *params
		var err error
		if p.Filter, err = fc.rewriteFilter(expr); err != nil {
			return err
		}
		return s.read(ctx, func(tx store.Tx) error {
			c, err := tx.GetCollection(ctx, col)
			if err != nil {
				return err
			}
			if err := fc.check(c); err != nil {
				return err
			}
			fields, err := s.core.schemas.fields(s.tenant.ID, c)
			if err != nil {
				return err
			}
			if err := checkFields(fields, expr, order); err != nil {
				return err
			}
			page, err = tx.ListRecords(ctx, &p)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	for i, r := range page.Records {
		if page.Records[i], err = fc.open(r); err != nil {
			return nil, err
		}
	}
	out := &RecordList{Items: make([]*Record, 0, len(page.Records))}
	for _, r := range page.Records {
		out.Items = append(out.Items, recordView(r))
	}
	if q.Count {
		total := page.Total
		out.Total = &total
	}
	if page.Next != nil {
		out.NextCursor = s.core.sealCursor(string(s.tenant.ID), binding, page.Next)
	}
	return out, nil
}

// Usage reports what the tenant stores against its plan.
func (s *Scope) Usage(ctx context.Context) (*Usage, error) {
	if err := s.allow(access.ReadUsage); err != nil {
		return nil, err
	}
	var u *store.Usage
	err := s.read(ctx, func(tx store.Tx) (err error) {
		u, err = tx.Usage(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	plan := &s.plan
	return &Usage{Records: u.Records, Bytes: u.Bytes, Plan: plan.Name, MaxRecords: plan.MaxRecords, MaxBytes: plan.MaxBytes}, nil
}
