package crdbundle

import (
	"sync"
	"testing"
)

// reset forgets the parsed tables, as at program start.
func reset() {
	loadOnce = sync.Once{}
	loaded, loadErr = nil, nil
}

// Cold: the first Lookup of a process (tables parsed, one file decompressed). Warm: tables
// already parsed. The small cert-manager Certificate and the largest document, Argo CD's
// ApplicationSet (1.5 MB of YAML), bound the cost.
func BenchmarkLookup(b *testing.B) {
	for _, c := range []struct{ name, group, kind string }{
		{"Certificate", "cert-manager.io", "Certificate"},
		{"ApplicationSet", "argoproj.io", "ApplicationSet"},
	} {
		b.Run("cold/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				reset()
				if _, _, ok := Lookup(c.group, c.kind); !ok {
					b.Fatal("not found")
				}
			}
		})
		b.Run("warm/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			Lookup(c.group, c.kind)
			for b.Loop() {
				if _, _, ok := Lookup(c.group, c.kind); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
	b.Run("tables-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reset()
			if len(Kinds()) == 0 {
				b.Fatal("no kinds")
			}
		}
	})
}
