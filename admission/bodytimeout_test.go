package admission

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A client that sends the headers and a byte of a 1000-byte body, then stalls, is
// answered 408 within BodyTimeout (over a real connection: the read deadline is the
// connection's), and does not hold the request for the evaluation timeout or longer.
func TestHandlerBodyTimeout(t *testing.T) {
	opts := DefaultHandlerOptions()
	opts.BodyTimeout = 300 * time.Millisecond
	opts.Timeout = 10 * time.Second
	srv := httptest.NewServer(NewHandler(func() *Gate { return mustBuiltin(t) }, opts))
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("POST /validate HTTP/1.1\r\nHost: gitgate\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body within 5s: %v", err)
	}
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || took > 3*time.Second {
		t.Fatalf("HTTP %d after %v, want 408 soon after the 300ms body timeout", resp.StatusCode, took)
	}
}
