package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob" // s3:// URLs
	"gocloud.dev/gcerrors"
)

// Dest is where backups are kept: a local directory or a bucket. Each
// backup is a prefix "<name>/" holding its files; its manifest is uploaded
// last, so a backup whose upload broke off is not listed.
type Dest struct {
	bucket *blob.Bucket
}

// OpenDest opens the destination loc: a bucket URL that gocloud.dev/blob
// opens ("file:///srv/backups", "s3://bucket?endpoint=…&region=…"), or
// else a local directory, created with mode 0700 if missing.
func OpenDest(ctx context.Context, loc string) (*Dest, error) {
	if loc == "" {
		return nil, errors.New("backup: no destination")
	}
	if u, err := url.Parse(loc); err == nil && u.Scheme == "file" && u.RawQuery == "" && u.Host == "" {
		// A plain file URL is a directory: opened as one, with the modes
		// that suit backups (a query string is fileblob's to read).
		loc = filepath.FromSlash(u.Path)
	}
	if strings.Contains(loc, "://") {
		b, err := blob.OpenBucket(ctx, loc)
		if err != nil {
			return nil, fmt.Errorf("backup: open %s: %w", redact(loc), err)
		}
		return &Dest{bucket: b}, nil
	}
	abs, err := filepath.Abs(loc)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// Temporary files beside their final names, so that the rename that
	// completes each upload never crosses file systems.
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{DirFileMode: 0o700, Metadata: fileblob.MetadataDontWrite, NoTempDir: true})
	if err != nil {
		return nil, fmt.Errorf("backup: open %s: %w", loc, err)
	}
	return &Dest{bucket: b}, nil
}

// Close closes the bucket.
func (d *Dest) Close() error { return d.bucket.Close() }

// Upload copies the backup staged in the local directory dir (named
// path.Base(dir)) to the destination, manifest last.
func (d *Dest) Upload(ctx context.Context, dir string) error {
	name := filepath.Base(dir)
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return fmt.Errorf("backup: upload: %w", err)
	}
	// The manifest (and its signature) last: until it is there, the backup
	// is not listed.
	slices.SortStableFunc(files, func(a, b string) int {
		return boolInt(a == ManifestFile) - boolInt(b == ManifestFile)
	})
	for _, f := range files {
		if err := d.put(ctx, filepath.Join(dir, filepath.FromSlash(f)), name+"/"+f); err != nil {
			return fmt.Errorf("backup: upload %s: %w", name+"/"+f, err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (d *Dest) put(ctx context.Context, src, key string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := d.bucket.NewWriter(ctx, key, &blob.WriterOptions{BeforeWrite: private})
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// private makes a file that fileblob writes readable by this user only:
// it holds tenants' data. Other buckets have their own access control.
func private(as func(any) bool) error {
	var f *os.File
	if as(&f) {
		return f.Chmod(0o600)
	}
	return nil
}

// Download copies backup name into a new directory dir/name and returns
// its path.
func (d *Dest) Download(ctx context.Context, name, dir string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("backup: %q is not a backup name", name)
	}
	out := filepath.Join(dir, name)
	it := d.bucket.List(&blob.ListOptions{Prefix: name + "/"})
	n := 0
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("backup: download %s: %w", name, err)
		}
		rel := strings.TrimPrefix(obj.Key, name+"/")
		if obj.IsDir || !filepath.IsLocal(filepath.FromSlash(rel)) {
			continue
		}
		if err := d.get(ctx, obj.Key, filepath.Join(out, filepath.FromSlash(rel))); err != nil {
			return "", fmt.Errorf("backup: download %s: %w", obj.Key, err)
		}
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("backup: no backup %s", name)
	}
	return out, nil
}

func (d *Dest) get(ctx context.Context, key, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	r, err := d.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}

// validName reports whether name is a backup's name (see Name).
func validName(name string) bool {
	return strings.HasPrefix(name, "bulkhead-") && path.Base(name) == name && !strings.ContainsAny(name, `/\`)
}

// List returns the names of the complete backups (those with a manifest),
// oldest first.
func (d *Dest) List(ctx context.Context) ([]string, error) {
	it := d.bucket.List(&blob.ListOptions{Delimiter: "/"})
	var names []string
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("backup: list: %w", err)
		}
		name := strings.TrimSuffix(obj.Key, "/")
		if !obj.IsDir || !validName(name) {
			continue
		}
		ok, err := d.bucket.Exists(ctx, name+"/"+ManifestFile)
		if err != nil {
			return nil, fmt.Errorf("backup: list: %w", err)
		}
		if ok {
			names = append(names, name)
		}
	}
	slices.Sort(names) // names sort in time order
	return names, nil
}

// Delete removes backup name, manifest first, so that a deletion that
// breaks off leaves an unlisted remnant rather than a listed, partial
// backup.
func (d *Dest) Delete(ctx context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("backup: %q is not a backup name", name)
	}
	if err := d.bucket.Delete(ctx, name+"/"+ManifestFile); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("backup: delete %s: %w", name, err)
	}
	it := d.bucket.List(&blob.ListOptions{Prefix: name + "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("backup: delete %s: %w", name, err)
		}
		if err := d.bucket.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return fmt.Errorf("backup: delete %s: %w", obj.Key, err)
		}
	}
}

// Prune deletes all but the newest keep complete backups, and returns the
// names it deleted. keep < 1 keeps everything.
func (d *Dest) Prune(ctx context.Context, keep int) ([]string, error) {
	if keep < 1 {
		return nil, nil
	}
	names, err := d.List(ctx)
	if err != nil || len(names) <= keep {
		return nil, err
	}
	old := names[:len(names)-keep]
	for _, n := range old {
		if err := d.Delete(ctx, n); err != nil {
			return nil, err
		}
	}
	return old, nil
}
