package main

import (
	"testing"

	"k8s.io/client-go/rest"
)

// TestConnectKeepsClients: an --interval's later rounds reuse the client made for the
// same server and credentials; a rotated token, another server or other TLS data get
// their own.
func TestConnectKeepsClients(t *testing.T) {
	f := &clusterFlags{qps: 5, burst: 10}
	cfg := &rest.Config{Host: "https://east.example.com:6443", BearerToken: "t1"}
	first, err := f.connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.connect(rest.CopyConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("the same cluster got a new client")
	}
	for name, change := range map[string]func(*rest.Config){
		"token":  func(c *rest.Config) { c.BearerToken = "t2" },
		"server": func(c *rest.Config) { c.Host = "https://west.example.com:6443" },
		"tls":    func(c *rest.Config) { c.ServerName = "kube.west.example.com" },
	} {
		c := rest.CopyConfig(cfg)
		change(c)
		other, err := f.connect(c)
		if err != nil {
			t.Fatal(err)
		}
		if other == first {
			t.Errorf("%s changed: the old client was reused", name)
		}
	}
	if cfg.QPS != 0 || cfg.UserAgent != "" {
		t.Errorf("connect changed its argument: %+v", cfg)
	}
}
