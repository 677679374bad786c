package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/internal/git"
)

// cache is the content-addressed store: blobs under sha256/<hex>, verified by
// re-hashing on every read, and ref records under refs/ mapping a name to a digest.
// Every file is written to a temporary file and renamed, so concurrent processes
// never see a partial one.
type cache struct {
	dir string
	max int64
	mu  sync.Mutex // serialises eviction within a process
}

// ref is a name's record: which digest it resolved to, and when.
type ref struct {
	Key    string    `json:"key"`
	Digest string    `json:"digest"`
	Time   time.Time `json:"time"`
	// Version is what a constraint resolved to, for records that resolve one.
	Version string `json:"version,omitempty"`
	// URL is where the content was downloaded from (to fetch it again).
	URL string `json:"url,omitempty"`
	// Dir is where a Git commit is written out.
	Dir string `json:"dir,omitempty"`
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blobPath is the file of a "sha256:<hex>" digest, or an error for anything else.
func (c *cache) blobPath(digest string) (string, error) {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexd) != 64 {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", digest)
	}
	if _, err := hex.DecodeString(hexd); err != nil {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", digest)
	}
	return filepath.Join(c.dir, "sha256", strings.ToLower(hexd)), nil
}

// errCorrupt is a blob whose content does not hash to its name; it has been removed.
var errCorrupt = errors.New("cached blob does not match its digest (removed)")

// get reads a blob and checks it hashes to digest: fs.ErrNotExist when absent,
// errCorrupt (and the blob removed) when it does not. A read touches the blob for
// least-recently-used eviction.
func (c *cache) get(digest string) ([]byte, error) {
	p, err := c.blobPath(digest)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if digestOf(b) != strings.ToLower(digest) {
		os.Remove(p)
		return nil, errCorrupt
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return b, nil
}

// put stores b under its digest (which must be want when want is not empty) and
// evicts past the bound.
func (c *cache) put(b []byte, want string) (string, error) {
	d := digestOf(b)
	if want != "" && !strings.EqualFold(want, d) {
		return "", fmt.Errorf("content has digest %s, want %s", d, want)
	}
	p, _ := c.blobPath(d)
	if _, err := os.Stat(p); err == nil {
		now := time.Now()
		_ = os.Chtimes(p, now, now)
		return d, nil
	}
	if err := writeAtomic(p, b); err != nil {
		return "", err
	}
	c.evict(p)
	return d, nil
}

func writeAtomic(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cache: %w; check --cache-dir", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache: %w; check --cache-dir", err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// refPath is the record file of a name. Names and recorded URLs never hold
// credentials: a URL's password is redacted from the name (the content is addressed by
// digest anyway) and a URL with credentials is not recorded.
func (c *cache) refPath(key string) string {
	s := sha256.Sum256([]byte(git.Redact(key)))
	return filepath.Join(c.dir, "refs", hex.EncodeToString(s[:16])+".json")
}

// getRef reads a name's record; ok false when there is none (or it is unreadable).
func (c *cache) getRef(key string) (ref, bool) {
	b, err := os.ReadFile(c.refPath(key))
	if err != nil {
		return ref{}, false
	}
	var r ref
	if json.Unmarshal(b, &r) != nil || r.Key != git.Redact(key) {
		return ref{}, false
	}
	return r, true
}

func (c *cache) putRef(r ref) error {
	r.Key = git.Redact(r.Key)
	if git.Redact(r.URL) != r.URL {
		r.URL = ""
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeAtomic(c.refPath(r.Key), b)
}

// evict removes the least recently used blobs (by modification time, which reads
// touch) until the blobs fit the bound; keep (just written) stays.
func (c *cache) evict(keep string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	type blob struct {
		path string
		size int64
		used time.Time
	}
	var blobs []blob
	var total int64
	entries, err := os.ReadDir(filepath.Join(c.dir, "sha256"))
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		p := filepath.Join(c.dir, "sha256", e.Name())
		blobs = append(blobs, blob{p, info.Size(), info.ModTime()})
		total += info.Size()
	}
	if total <= c.max {
		return
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].used.Before(blobs[j].used) })
	for _, b := range blobs {
		if total <= c.max {
			break
		}
		if b.path == keep {
			continue
		}
		if err := os.Remove(b.path); err == nil || errors.Is(err, fs.ErrNotExist) {
			total -= b.size
		}
	}
}
