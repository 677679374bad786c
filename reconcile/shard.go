package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ShardLabel marks the Leases of one sharded sync: its value is the group.
const ShardLabel = "gitgate.dev/shard-group"

// Shards splits the apps of a sync over replicas. Each replica holds a Lease of its own
// (coordination.k8s.io, labelled ShardLabel=Group), renewed every LeaseDuration/3; the
// live replicas are those whose Lease was renewed within its duration, and an app
// belongs to the live replica that wins its rendezvous hash (highest hash of replica and
// app name). The split is by app, not by cluster: apps are many and alike, clusters few
// (often one), so apps balance N replicas where clusters would leave some idle; an app's
// inventory is its own, so no two replicas share state.
//
// When a replica dies, its Lease stops being renewed; at most LeaseDuration later the
// others no longer count it, and Run tells them the set changed, so they sync its apps:
// a dead replica's apps are taken over within LeaseDuration + LeaseDuration/3 + one sync
// round. Only the dead replica's apps move (the rendezvous hash of the others' apps does
// not change). While the set changes, two replicas may briefly both sync an app; a
// server-side apply by the same field manager of the same revision is idempotent.
type Shards struct {
	// Client reaches the cluster holding the Leases (the local one).
	Client    client.Client
	Namespace string
	// Group names the sharded sync (default gitgate-sync): replicas of one Deployment.
	Group string
	// Identity is this replica's (the pod name).
	Identity string
	// LeaseDuration (default 30s) is how long a replica counts after its last renewal.
	LeaseDuration time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu   sync.Mutex
	last []string
}

func (s *Shards) group() string {
	if s.Group == "" {
		return "gitgate-sync"
	}
	return s.Group
}

func (s *Shards) duration() time.Duration {
	if s.LeaseDuration <= 0 {
		return 30 * time.Second
	}
	return s.LeaseDuration
}

func (s *Shards) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// LeaseName is this replica's Lease: the group and the identity as a DNS name, with a
// hash when the identity had to be changed.
func (s *Shards) LeaseName() string {
	id := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(s.Identity), "-"), "-")
	name := s.group() + "-" + id
	if id != s.Identity || len(name) > 63 {
		sum := sha256.Sum256([]byte(s.Identity))
		if len(name) > 54 {
			name = strings.Trim(name[:54], "-")
		}
		name += "-" + hex.EncodeToString(sum[:4])
	}
	return name
}

// Renew creates or renews this replica's Lease.
func (s *Shards) Renew(ctx context.Context) error {
	now := metav1.NewMicroTime(s.now())
	secs := int32(s.duration() / time.Second)
	if secs < 1 {
		secs = 1
	}
	l := &coordinationv1.Lease{}
	key := client.ObjectKey{Namespace: s.Namespace, Name: s.LeaseName()}
	err := s.Client.Get(ctx, key, l)
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: key.Name, Labels: map[string]string{ShardLabel: s.group()}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &s.Identity, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
		}
		if err := s.Client.Create(ctx, l); err != nil {
			return fmt.Errorf("create the shard Lease %s/%s: %w", s.Namespace, key.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the shard Lease %s/%s: %w", s.Namespace, key.Name, err)
	}
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[ShardLabel] = s.group()
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &s.Identity, &secs, &now
	if err := s.Client.Update(ctx, l); err != nil {
		return fmt.Errorf("renew the shard Lease %s/%s: %w", s.Namespace, key.Name, err)
	}
	return nil
}

// Release deletes this replica's Lease, so the others take its apps over at once (a
// graceful shutdown); a replica that dies without it is counted out when its Lease
// expires.
func (s *Shards) Release(ctx context.Context) error {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.LeaseName()}}
	if err := s.Client.Delete(ctx, l); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release the shard Lease %s/%s: %w", s.Namespace, l.Name, err)
	}
	return nil
}

// Live lists the identities of the replicas whose Lease is unexpired, sorted.
func (s *Shards) Live(ctx context.Context) ([]string, error) {
	var list coordinationv1.LeaseList
	if err := s.Client.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabels{ShardLabel: s.group()}); err != nil {
		return nil, fmt.Errorf("list the shard Leases in %s: %w", s.Namespace, err)
	}
	now := s.now()
	var out []string
	for _, l := range list.Items {
		sp := l.Spec
		if sp.HolderIdentity == nil || sp.RenewTime == nil || sp.LeaseDurationSeconds == nil {
			continue
		}
		if sp.RenewTime.Add(time.Duration(*sp.LeaseDurationSeconds) * time.Second).After(now) {
			out = append(out, *sp.HolderIdentity)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Owner is the replica an app belongs to: the highest hash of replica and app name
// (rendezvous hashing), "" without replicas.
func Owner(app string, replicas []string) string {
	best, owner := uint64(0), ""
	for _, r := range replicas {
		h := fnv.New64a()
		h.Write([]byte(r))
		h.Write([]byte{0})
		h.Write([]byte(app))
		if v := mix(h.Sum64()); owner == "" || v > best || v == best && r < owner {
			best, owner = v, r
		}
	}
	return owner
}

// mix is splitmix64's finaliser: FNV alone barely tells app-1 from app-2 in its high bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Mine keeps the apps this replica owns among the live replicas. A replica whose own
// Lease is not live (not renewed in time) owns nothing: the others have its apps.
func (s *Shards) Mine(ctx context.Context, apps []App) ([]App, []string, error) {
	live, err := s.Live(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(live, s.Identity) {
		return nil, live, fmt.Errorf("this replica's shard Lease %s/%s is not live (not renewed within %s): syncing nothing; the other replicas have its apps", s.Namespace, s.LeaseName(), s.duration())
	}
	var out []App
	for _, a := range apps {
		if Owner(a.Name, live) == s.Identity {
			out = append(out, a)
		}
	}
	return out, live, nil
}

// Run renews the Lease every LeaseDuration/3 until ctx ends and sends on changed (when
// not nil, without blocking) whenever the set of live replicas changes, so a sync loop
// can take a dead replica's apps over without waiting for its interval. A failed renewal
// is passed to onErr and retried at the next tick.
func (s *Shards) Run(ctx context.Context, changed chan<- struct{}, onErr func(error)) {
	t := time.NewTicker(s.duration() / 3)
	defer t.Stop()
	for {
		err := s.Renew(ctx)
		var live []string
		if err == nil {
			live, err = s.Live(ctx)
		}
		if err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		if err == nil {
			s.mu.Lock()
			moved := s.last != nil && !slices.Equal(s.last, live)
			s.last = live
			s.mu.Unlock()
			if moved && changed != nil {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
