package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"github.com/voicegate/voicegate/internal/allowlist"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// common name and returns its DER.
func writeCert(t *testing.T, dir, cn string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	// Write to temp names and rename, as a certificate manager would.
	os.WriteFile(filepath.Join(dir, "cert.tmp"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.tmp"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.Rename(filepath.Join(dir, "key.tmp"), filepath.Join(dir, "key.pem"))
	os.Rename(filepath.Join(dir, "cert.tmp"), filepath.Join(dir, "cert.pem"))
	return der
}

// testConfig is what Listen takes, with the defaults (no import of the
// config package, which imports this one).
type testConfig struct {
	Listen string
	Server Config
	TLS    TLSConfig
}

func defaults() *testConfig {
	return &testConfig{Listen: "127.0.0.1:0", Server: DefaultConfig(), TLS: DefaultTLSConfig()}
}

func listenCfg(c *testConfig, log *slog.Logger) (*Server, error) {
	return Listen(c.Listen, c.Server, c.TLS, log)
}

func tlsConfig(t *testing.T, dir, min string) *testConfig {
	c := defaults()
	c.Listen = "127.0.0.1:0"
	c.TLS = TLSConfig{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), MinVersion: min, ReloadInterval: confval.Duration(20 * time.Millisecond)}
	return c
}

func peerCN(t *testing.T, addr string, max uint16) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: max})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestTLSMinimumAndReload(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "first")
	log := slog.New(slog.DiscardHandler)
	s, err := listenCfg(tlsConfig(t, dir, "1.2"), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, http.NotFoundHandler(), 20*time.Millisecond, nil) }()
	addr := s.Addr().String()
	if cn, err := peerCN(t, addr, tls.VersionTLS12); err != nil || cn != "first" {
		t.Fatalf("TLS 1.2 handshake: %q %v", cn, err)
	}
	if _, err := peerCN(t, addr, tls.VersionTLS11); err == nil {
		t.Fatal("TLS 1.1 must be refused")
	}
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	writeCert(t, dir, "second")
	deadline := time.Now().Add(5 * time.Second)
	for {
		cn, err := peerCN(t, addr, 0)
		if err == nil && cn == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate not reloaded: %q %v", cn, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A broken pair on disk keeps the previous certificate.
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("garbage"), 0o600)
	time.Sleep(100 * time.Millisecond)
	if cn, err := peerCN(t, addr, 0); err != nil || cn != "second" {
		t.Fatalf("after a bad reload: %q %v", cn, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestTLS13Only(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "x")
	s, err := listenCfg(tlsConfig(t, dir, "1.3"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, http.NotFoundHandler(), time.Minute, nil)
	if _, err := peerCN(t, s.Addr().String(), tls.VersionTLS12); err == nil {
		t.Fatal("TLS 1.2 must be refused when min_version is 1.3")
	}
	if _, err := peerCN(t, s.Addr().String(), tls.VersionTLS13); err != nil {
		t.Fatal(err)
	}
}

func TestMissingCertificateRefusesToStart(t *testing.T) {
	if _, err := listenCfg(tlsConfig(t, t.TempDir(), "1.2"), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("want an error for missing certificate files")
	}
}

func TestDrainFinishesInFlightRequests(t *testing.T) {
	c := defaults()
	c.Listen = "127.0.0.1:0"
	s, err := Listen(c.Listen, c.Server, c.TLS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, h, time.Minute, func() { close(drained) }) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	<-drained
	if err := <-done; err != nil {
		t.Fatalf("drain: %v", err)
	}
	if b := <-got; b != "finished" {
		t.Fatalf("in-flight request cut off: %q", b)
	}
	if _, err := http.Get("http://" + s.Addr().String() + "/"); err == nil {
		t.Fatal("new connections must be refused after drain")
	}
}

func TestTimeoutsSetAndSlowHeadersCut(t *testing.T) {
	c := defaults()
	c.Listen = "127.0.0.1:0"
	c.Server.ReadHeaderTimeout = confval.Duration(100 * time.Millisecond)
	s, err := Listen(c.Listen, c.Server, c.TLS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if s.srv.ReadHeaderTimeout == 0 || s.srv.ReadTimeout == 0 || s.srv.WriteTimeout == 0 || s.srv.IdleTimeout == 0 || s.srv.MaxHeaderBytes == 0 {
		t.Fatalf("a zero timeout means none: %+v", s.srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, http.NotFoundHandler(), time.Minute, nil)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /webhook/vapi HTTP/1.1\r\nHost: x\r\n") // never finishes its headers
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	io.ReadAll(conn) // returns when the server closes the connection
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow-header connection held for %v", d)
	}
}

func TestAdminListenerServesMetricsAndPprof(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "voicegate_up 1\n") })
	admin, err := ListenAdmin("127.0.0.1:0", nil, metrics, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := admin.Addr()
	served := make(chan error, 1)
	go func() { served <- admin.Serve(ctx) }()
	if resp, err := http.Get("http://" + addr.String() + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin /metrics: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + addr.String() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("goroutine")) {
		t.Fatalf("pprof index: %d", resp.StatusCode)
	}
	cancel()
	// Serve returns once the listener has stopped: the caller can wait.
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("admin Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + addr.String() + "/debug/pprof/"); err == nil {
		t.Fatal("admin listener still up after shutdown")
	}
}

// TestHTTP2StreamsPerConnectionBounded: one HTTP/2 connection cannot open
// more than server.max_concurrent_streams requests at once.
func TestHTTP2StreamsPerConnectionBounded(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "h2")
	c := tlsConfig(t, dir, "1.2")
	c.Server.MaxConcurrentStreams = 4
	s, err := Listen(c.Listen, c.Server, c.TLS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inFlight, peak := 0, 0
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("request over HTTP/%d, want HTTP/2", r.ProtoMajor)
		}
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, h, time.Minute, nil) }()
	defer func() { cancel(); <-done }()

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
		HTTP2: &http.HTTP2Config{StrictMaxConcurrentRequests: true}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 40 * time.Second}
	// Requests past the bound are refused by the server (REFUSED_STREAM);
	// the client retries them. They are cancelled at the end of the test.
	rctx, rcancel := context.WithCancel(context.Background())
	const n = 12
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(rctx, http.MethodGet, "https://"+s.Addr().String()+"/", nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	// Bounded waits, generous: under the race detector on a busy machine
	// the TLS handshakes alone can take seconds.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		f := inFlight
		mu.Unlock()
		if f >= 4 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let any excess stream arrive
	close(release)
	time.Sleep(50 * time.Millisecond)
	rcancel()
	wg.Wait()
	mu.Lock() // a retried request may still reach a handler
	seen := peak
	mu.Unlock()
	if seen > 4 || seen == 0 {
		t.Fatalf("peak concurrent streams on one connection: %d, want at most the configured 4", seen)
	}
}

// TestDrainWaitsForHijackedConnections: http.Server.Shutdown neither signals
// nor waits for connections a handler took over (a future media
// WebSocket). Registered ones are told to finish when the drain starts, and
// Serve returns only once they have, or fails when the drain times out.
func TestDrainWaitsForHijackedConnections(t *testing.T) {
	for _, tc := range []struct {
		name     string
		finishes bool
	}{{"finishes", true}, {"never finishes", false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults()
			c.Listen = "127.0.0.1:0"
			c.Server.DrainTimeout = confval.Duration(500 * time.Millisecond)
			s, err := Listen(c.Listen, c.Server, c.TLS, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			var closed atomic.Bool
			taken := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, done := s.Hijacked()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					done()
					return
				}
				close(taken)
				go func() {
					<-ctx.Done()
					if !tc.finishes {
						return // holds the connection past the drain timeout
					}
					time.Sleep(100 * time.Millisecond) // a close handshake
					conn.Close()
					closed.Store(true)
					done()
				}()
			})
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- s.Serve(ctx, h, time.Second, nil) }()
			conn, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			select {
			case <-taken:
			case <-time.After(5 * time.Second):
				t.Fatal("the handler never took the connection over")
			}
			cancel()
			err = <-served
			if tc.finishes {
				if err != nil || !closed.Load() {
					t.Fatalf("Serve returned %v with the taken-over connection closed: %v", err, closed.Load())
				}
			} else if err == nil || !strings.Contains(err.Error(), "taken over") {
				t.Fatalf("Serve returned %v, want the drain timeout naming taken-over connections", err)
			}
		})
	}
}

func TestTrustedProxiesValidated(t *testing.T) {
	c := DefaultConfig()
	c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "::1", "not-an-ip", "0.0.0.0/0"}
	probs := strings.Join(c.Validate(), "\n")
	if !strings.Contains(probs, `trusted_proxies[3]: "not-an-ip" is not an IP address or CIDR range`) || !strings.Contains(probs, `trusted_proxies[4]: "0.0.0.0/0" trusts every address`) || strings.Count(probs, "trusted_proxies") != 2 {
		t.Fatalf("problems:\n%s", probs)
	}
	if got := c.Proxies(); len(got) != 3 || got[1].String() != "192.0.2.7/32" || got[2].String() != "::1/128" {
		t.Fatalf("parsed: %v", got)
	}
}

// TestAdminAllowlist: admin.allow_from is checked on the connection's own
// address (no proxy header is believed there).
func TestAdminAllowlist(t *testing.T) {
	for list, want := range map[string]int{"10.0.0.0/8": 403, "127.0.0.0/8": 200} {
		allow, err := allowlist.Config{list}.Build()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "voicegate_up 1\n") })
		admin, err := ListenAdmin("127.0.0.1:0", allow, metrics, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- admin.Serve(ctx) }()
		req, _ := http.NewRequest(http.MethodGet, "http://"+admin.Addr().String()+"/metrics", nil)
		req.Header.Set("X-Forwarded-For", "10.1.2.3")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("allow_from %s: %d, want %d", list, resp.StatusCode, want)
		}
		cancel()
		<-served
	}
}
