package render

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"path"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/gitgate/gitgate/internal/pool"
	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
)

// PlanMemo keeps a plan between runs, so a repository that did not change is planned
// without reading its files' contents. The caller (cmd/gitgate, through the verdict
// cache) keys it by everything Plan depends on besides the repository's files: gitgate's
// build, the repository root, DiscoverOptions (Include by the configuration it comes
// from) and Repo's settings. The repository's files are the memo's own business:
//
// A plan is stored with every observation Plan made of the repository, through the one
// confined fs.FS it reads: each directory listing (names and types), each stat (kind
// and size, or absent), each DirEntry.Info (kind and size) and the digest of each file
// read (or absent). A later run replays them; the stored plan is used only when every
// one is as recorded, else Plan runs afresh (and stores its plan). A file's content is
// compared by digest through Digest, which may trust a file's stat (the verdict cache's
// stat memo: racily-clean files hashed again); a name absent from a listing that is as
// recorded is absent without a stat of its own.
//
// A plan is not stored when Plan rendered a kustomization, a chart, jsonnet or a remote
// source to find Applications (app-of-apps: such a render reads through kustomize's,
// Helm's or jsonnet's own file access, which is not observed here; plain manifest
// directories, the usual home of Applications, are read through the observed fs.FS and
// do not count), consulted a
// remote source (an Application's source in another repository, fetched to tell its
// kind: its tree is not observed here), reported an error, or observed something it
// cannot replay (a read refused or failing other than "not found", a file opened that
// is not a small regular file); nor when its targets do not survive the encoding.
// Argo CD Applications that discovery found in the repository's files are planned from
// those files, which are observed, so such a plan is stored; the Application objects
// themselves (Discovery.Apps) are not kept: a plan from the memo has none (check reads
// only the targets; reconcile plans with Plan).
type PlanMemo interface {
	// Load is the stored blob (false: none).
	Load() ([]byte, bool)
	// Save stores a blob (failures are the memo's: the next run plans afresh).
	Save([]byte)
	// Digest is the digest of a repository file whose stat (fi, links followed, not a
	// directory) was just taken, as the caller keys files. It must read through the same
	// confined view as Plan.
	Digest(name string, fi fs.FileInfo) (string, error)
	// Listed is told the names of a directory as listed now, through the same view.
	Listed(dir string, names map[string]bool)
	// Seen is told of a file Plan read (its stat taken before the read, nil when it
	// could not be taken) and returns the digest Digest gives those bytes.
	Seen(name string, fi fs.FileInfo, data []byte) string
}

// planMemoFormat changes with the blob's layout or meaning.
const planMemoFormat = "gitgate-plan/1"

// planBlob is a stored plan. Encoded (encodePlan) as the format line, the plan's JSON
// (targets, notices, whether it renders) with its length, then the observations and the
// dependencies as length-prefixed strings: tens of thousands of them, which JSON would
// take longer to decode than replaying them takes.
type planBlob struct {
	Format         string            `json:"-"`
	Obs            map[string]string `json:"-"`
	Targets        []Target          `json:"targets"`
	Notices        []string          `json:"notices,omitempty"`
	NeedsRendering bool              `json:"needsRendering,omitempty"`
	Deps           map[string]Deps   `json:"-"`
}

func encodePlan(b *planBlob) ([]byte, error) {
	head, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	var w bytes.Buffer
	w.WriteString(planMemoFormat + "\n")
	putBlobString(&w, string(head))
	putBlobUint(&w, uint64(len(b.Obs)))
	for _, k := range slices.Sorted(maps.Keys(b.Obs)) {
		putBlobString(&w, k)
		putBlobString(&w, b.Obs[k])
	}
	putBlobUint(&w, uint64(len(b.Deps)))
	for _, k := range slices.Sorted(maps.Keys(b.Deps)) {
		putBlobString(&w, k)
		putBlobUint(&w, uint64(len(b.Deps[k])))
		for _, f := range b.Deps[k] {
			putBlobString(&w, f)
		}
	}
	return w.Bytes(), nil
}

func decodePlan(data []byte) (*planBlob, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(planMemoFormat+"\n"))
	if !ok {
		return nil, false
	}
	r := &blobReader{b: rest}
	b := &planBlob{Format: planMemoFormat}
	if head := r.string(); r.err != nil || json.Unmarshal([]byte(head), b) != nil {
		return nil, false
	}
	n := r.uint()
	if n > uint64(len(r.b)) {
		return nil, false
	}
	b.Obs = make(map[string]string, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.string()
		b.Obs[k] = r.string()
	}
	n = r.uint()
	if n > uint64(len(r.b)) {
		return nil, false
	}
	b.Deps = make(map[string]Deps, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.string()
		m := r.uint()
		if m > uint64(len(r.b)) {
			return nil, false
		}
		d := make(Deps, 0, m)
		for j := uint64(0); j < m && r.err == nil; j++ {
			d = append(d, r.string())
		}
		b.Deps[k] = d
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, false
	}
	return b, true
}

func putBlobUint(w *bytes.Buffer, v uint64) {
	var buf [binary.MaxVarintLen64]byte
	w.Write(buf[:binary.PutUvarint(buf[:], v)])
}

func putBlobString(w *bytes.Buffer, s string) {
	putBlobUint(w, uint64(len(s)))
	w.WriteString(s)
}

type blobReader struct {
	b   []byte
	err error
}

var errBlob = errors.New("corrupt plan memo")

func (r *blobReader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBlob
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *blobReader) string() string {
	n := r.uint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errBlob
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// PlanStats says how a memoised plan was made.
type PlanStats struct {
	// Reused: the stored plan was used; else Plan ran (Stored: and stored it).
	Reused, Stored bool
	// Why the stored plan was not used or a plan not stored ("" when it was).
	Why     string
	Elapsed time.Duration
}

// PlanWithMemo is Plan with memo: the stored plan when every observation of the
// repository it was made from still holds, else Plan's, stored for the next run when it
// can be replayed (see PlanMemo). The result is the plan Plan would make.
func PlanWithMemo(ctx context.Context, repo Repo, opts DiscoverOptions, workers int, memo PlanMemo) (*Discovery, PlanStats) {
	start := time.Now()
	repo = repo.confined()
	inner, ok := repo.FS.(*repopath.FS)
	if memo == nil || !ok || inner.Root() == nil {
		return Plan(ctx, repo, opts, workers), PlanStats{Why: "no memo for this repository", Elapsed: time.Since(start)}
	}
	why := "no stored plan"
	if b, ok := memo.Load(); ok {
		blob, ok := decodePlan(b)
		switch {
		case !ok:
			why = "the stored plan does not decode"
		default:
			if w := replay(ctx, inner, memo, blob.Obs, workers); w != "" {
				why = w
				break
			}
			d := &Discovery{Targets: blob.Targets, Notices: blob.Notices, NeedsRendering: blob.NeedsRendering, rendered: map[string]Rendered{}}
			d.deps = newDepsCache(inner)
			for k, v := range blob.Deps {
				d.deps.memo[k] = v
			}
			return d, PlanStats{Reused: true, Elapsed: time.Since(start)}
		}
	}
	rec := &recordFS{inner: inner, memo: memo, obs: map[string]string{}}
	r := repo
	r.FS = rec
	if r.Remotes != nil {
		r.Remotes = &recordRemotes{Remotes: r.Remotes, rec: rec}
	}
	d := Plan(ctx, r, opts, workers)
	if d.deps != nil {
		d.deps.fsys = inner // later dependencies are not part of the plan
	}
	stats := PlanStats{Why: why, Elapsed: time.Since(start)}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		stats.Why += "; not stored: interrupted"
	case rec.bad != "":
		stats.Why += "; not stored: " + rec.bad
	case d.opaqueRender:
		stats.Why += "; not stored: Argo CD Applications rendered by a kustomization, chart or jsonnet (app-of-apps)"
	case len(d.Errors) > 0:
		stats.Why += "; not stored: the plan has errors"
	default:
		blob := planBlob{Format: planMemoFormat, Obs: rec.obs, Targets: d.Targets, Notices: d.Notices, NeedsRendering: d.NeedsRendering}
		if d.deps != nil {
			blob.Deps = map[string]Deps{}
			for _, t := range d.Targets {
				k := sourceKey(t)
				if v, ok := d.deps.memo[k]; ok {
					blob.Deps[k] = v
				}
			}
		}
		b, err := encodePlan(&blob)
		back, ok := decodePlan(b)
		if err != nil || !ok || !reflect.DeepEqual(back.Targets, blob.Targets) && !(len(back.Targets) == 0 && len(blob.Targets) == 0) {
			stats.Why += "; not stored: its targets do not survive the encoding"
			break
		}
		memo.Save(b)
		stats.Stored = true
	}
	return d, stats
}

// Observation keys: kind, NUL, name.
const (
	obsDir  = "d\x00" // ReadDir: listingDigest, or "absent"
	obsStat = "s\x00" // Stat: statPrint, or "absent"
	obsInfo = "i\x00" // DirEntry.Info of a listed entry: statPrint
	obsFile = "f\x00" // ReadFile/Open: the memo's digest, or "absent"
)

func statPrint(fi fs.FileInfo) string {
	if fi.IsDir() {
		return "dir"
	}
	b, _ := json.Marshal([]any{uint32(fi.Mode().Type()), fi.Size()})
	return string(b)
}

func listingDigest(entries []fs.DirEntry) string {
	h := sha256.New()
	for _, e := range entries {
		b, _ := json.Marshal([]any{e.Name(), uint32(e.Type())})
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	return "list:" + hex.EncodeToString(h.Sum(nil))
}

// recordFS is the confined repository as Plan reads it, observing every answer.
type recordFS struct {
	inner *repopath.FS
	memo  PlanMemo
	mu    sync.Mutex
	obs   map[string]string
	bad   string // what cannot be replayed ("": everything can)
}

var (
	_ fs.StatFS     = (*recordFS)(nil)
	_ fs.ReadFileFS = (*recordFS)(nil)
	_ fs.ReadDirFS  = (*recordFS)(nil)
)

// Root keeps Repo.confined from wrapping the recorder again.
func (r *recordFS) Root() *repopath.Root { return r.inner.Root() }

// recordRemotes is Repo.Remotes while a plan is recorded: anything fetched (or looked
// up) from outside the repository is not observed, so the plan is not stored.
type recordRemotes struct {
	Remotes
	rec *recordFS
}

func (r *recordRemotes) Chart(ctx context.Context, ref remote.ChartRef) (*remote.Chart, error) {
	r.rec.unreplayable("a remote chart consulted")
	return r.Remotes.Chart(ctx, ref)
}

func (r *recordRemotes) Git(ctx context.Context, url, ref string) (*remote.GitTree, error) {
	r.rec.unreplayable("a remote repository consulted")
	return r.Remotes.Git(ctx, url, ref)
}

func (r *recordRemotes) File(ctx context.Context, url string) ([]byte, error) {
	r.rec.unreplayable("a remote file consulted")
	return r.Remotes.File(ctx, url)
}

func (r *recordFS) note(key, v string) {
	r.mu.Lock()
	r.obs[key] = v
	r.mu.Unlock()
}

func (r *recordFS) unreplayable(why string) {
	r.mu.Lock()
	if r.bad == "" {
		r.bad = why
	}
	r.mu.Unlock()
}

// failed records an error: "not found" is an observation, anything else is not replayed.
func (r *recordFS) failed(key, name string, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		r.note(key+name, "absent")
		return
	}
	r.unreplayable(name + ": " + err.Error())
}

func (r *recordFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := r.inner.ReadDir(name)
	if err != nil {
		r.failed(obsDir, name, err)
		return nil, err
	}
	r.note(obsDir+name, listingDigest(entries))
	out := make([]fs.DirEntry, len(entries))
	for i, e := range entries {
		out[i] = recordEntry{DirEntry: e, r: r, name: path.Join(name, e.Name())}
	}
	return out, nil
}

type recordEntry struct {
	fs.DirEntry
	r    *recordFS
	name string
}

func (e recordEntry) Info() (fs.FileInfo, error) {
	fi, err := e.DirEntry.Info()
	if err != nil {
		e.r.unreplayable(e.name + ": " + err.Error())
		return nil, err
	}
	e.r.note(obsInfo+e.name, statPrint(fi))
	return fi, nil
}

func (r *recordFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := r.inner.Stat(name)
	if err != nil {
		r.failed(obsStat, name, err)
		return nil, err
	}
	r.note(obsStat+name, statPrint(fi))
	return fi, nil
}

func (r *recordFS) ReadFile(name string) ([]byte, error) {
	fi, _ := r.inner.Stat(name) // before the read: the stat memo's rule
	data, err := r.inner.ReadFile(name)
	if err != nil {
		r.failed(obsFile, name, err)
		return nil, err
	}
	r.note(obsFile+name, r.memo.Seen(name, fi, data))
	return data, nil
}

// maxOpen bounds a file Open reads whole to observe it.
const maxOpen = 64 << 20

func (r *recordFS) Open(name string) (fs.File, error) {
	fi, err := r.inner.Stat(name)
	if err != nil {
		r.failed(obsFile, name, err)
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxOpen {
		r.unreplayable(name + ": opened, not a small regular file")
		return r.inner.Open(name)
	}
	data, err := r.inner.ReadFile(name)
	if err != nil {
		r.failed(obsFile, name, err)
		return nil, err
	}
	r.note(obsFile+name, r.memo.Seen(name, fi, data))
	return &memFile{Reader: bytes.NewReader(data), fi: sizedInfo{fi, int64(len(data))}}, nil
}

// memFile is a file Open read whole.
type memFile struct {
	*bytes.Reader
	fi fs.FileInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.fi, nil }
func (f *memFile) Close() error               { return nil }

var _ io.ReadSeeker = (*memFile)(nil)

// sizedInfo is a stat with the size of what was read.
type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (s sizedInfo) Size() int64 { return s.size }

// replay checks the observations against the repository now: "" when every one holds,
// else what differs.
func replay(ctx context.Context, fsys *repopath.FS, memo PlanMemo, obs map[string]string, workers int) string {
	keys := slices.Sorted(maps.Keys(obs)) // listings ("d") before the entries and files they vouch for
	// Listings first: they answer for absent names and entries below them.
	var mu sync.Mutex
	listings := map[string]map[string]fs.DirEntry{} // dir -> entries, for listings as recorded
	var why string
	fail := func(w string) {
		mu.Lock()
		if why == "" {
			why = w
		}
		mu.Unlock()
	}
	var dirs, rest []string
	for _, k := range keys {
		if k[0] == 'd' {
			dirs = append(dirs, k)
		} else {
			rest = append(rest, k)
		}
	}
	pool.ForEach(ctx, len(dirs), workers, func(i int) {
		name := dirs[i][2:]
		entries, err := fsys.ReadDir(name)
		now := "absent"
		if err == nil {
			now = listingDigest(entries)
		} else if !errors.Is(err, fs.ErrNotExist) {
			now = "error"
		}
		if now != obs[dirs[i]] {
			fail("directory " + name + " changed")
			return
		}
		if err == nil {
			m := make(map[string]fs.DirEntry, len(entries))
			names := make(map[string]bool, len(entries))
			for _, e := range entries {
				m[e.Name()] = e
				names[e.Name()] = true
			}
			mu.Lock()
			listings[name] = m
			mu.Unlock()
			memo.Listed(name, names)
		}
	})
	if why != "" || ctx.Err() != nil {
		return "changed: " + why
	}
	// An absent name in a listing that holds is absent now.
	absentByListing := func(name string) bool {
		m, ok := listings[path.Dir(name)]
		if !ok {
			return false
		}
		_, there := m[path.Base(name)]
		return !there
	}
	// The rest by name: one stat answers its stat, its entry's Info (a listed entry
	// that is not a link: lstat is stat) and the digest of its content.
	byName := map[string][]string{}
	var names []string
	for _, k := range rest {
		n := k[2:]
		if _, ok := byName[n]; !ok {
			names = append(names, n)
		}
		byName[n] = append(byName[n], k)
	}
	pool.ForEach(ctx, len(names), workers, func(i int) {
		mu.Lock()
		stop := why != ""
		mu.Unlock()
		if stop {
			return
		}
		name := names[i]
		absent := true
		for _, k := range byName[name] {
			absent = absent && obs[k] == "absent"
		}
		if absent && absentByListing(name) {
			return
		}
		fi, err := fsys.Stat(name)
		for _, k := range byName[name] {
			var now string
			switch {
			case k[0] == 'i':
				e, ok := listings[path.Dir(name)][path.Base(name)]
				switch {
				case !ok:
					now = "unlisted"
				case e.Type()&fs.ModeSymlink == 0 && err == nil:
					now = statPrint(fi)
				default:
					if li, lerr := e.Info(); lerr == nil {
						now = statPrint(li)
					}
				}
			case err != nil && errors.Is(err, fs.ErrNotExist):
				now = "absent"
			case err != nil:
				now = "error"
			case k[0] == 's':
				now = statPrint(fi)
			case k[0] == 'f' && fi.IsDir():
				now = "dir"
			case k[0] == 'f':
				if d, derr := memo.Digest(name, fi); derr == nil {
					now = d
				}
			}
			if now != obs[k] {
				fail(name + " changed")
				return
			}
		}
	})
	if ctx.Err() != nil {
		return "interrupted"
	}
	if why != "" {
		return "changed: " + why
	}
	return ""
}
