package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"
)

// FloodOptions describe a header-only flood: the pre-authentication memory
// attack of the security review (clients that announce a large body and
// then send at most one byte).
type FloodOptions struct {
	URL       string        // webhook URL (loopback)
	Conns     int           // connections held open at once
	Announce  int64         // Content-Length announced by each
	Hold      time.Duration // how long they are held (bounded)
	ServerPID int           // to sample the server's resident memory
}

// FloodReport is what a flood measured.
type FloodReport struct {
	Opened       int     `json:"opened"`
	IdleRSSMB    float64 `json:"idle_rss_mb"`
	PeakRSSMB    float64 `json:"peak_rss_mb"` // sampled every 50 ms while held
	GrowthMB     float64 `json:"growth_mb"`
	AnnouncedMB  float64 `json:"announced_mb"`
	AnsweredLive bool    `json:"answered_after"` // the server still answered /healthz afterwards
}

// Flood opens the connections, holds them, samples the server's memory and
// closes everything. Bounded by o.Conns and o.Hold.
func Flood(ctx context.Context, o FloodOptions) (FloodReport, error) {
	var r FloodReport
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return r, fmt.Errorf("flood: bad URL %q", o.URL)
	}
	rss := func() float64 {
		if o.ServerPID == 0 {
			return 0
		}
		v, _, _ := procMem(o.ServerPID)
		return float64(v) / (1 << 20)
	}
	r.IdleRSSMB = rss()
	r.PeakRSSMB = r.IdleRSSMB
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 2 * time.Second}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", u.RequestURI(), u.Host, o.Announce)
	for i := 0; i < o.Conns && ctx.Err() == nil; i++ {
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return r, fmt.Errorf("flood: connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, head); err != nil {
			return r, fmt.Errorf("flood: connection %d: %w", i, err)
		}
		if i%100 == 0 {
			r.PeakRSSMB = max(r.PeakRSSMB, rss())
		}
	}
	r.Opened = len(conns)
	end := time.Now().Add(o.Hold)
	for time.Now().Before(end) && ctx.Err() == nil {
		r.PeakRSSMB = max(r.PeakRSSMB, rss())
		time.Sleep(50 * time.Millisecond)
	}
	r.GrowthMB = r.PeakRSSMB - r.IdleRSSMB
	r.AnnouncedMB = float64(int64(r.Opened)*o.Announce) / (1 << 20)
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	hc := net.Dialer{Timeout: 2 * time.Second}
	if c, err := hc.DialContext(ctx, "tcp", u.Host); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: "+u.Host+"\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		r.AnsweredLive = len(b) > 12 && string(b[9:12]) == "200"
	}
	return r, nil
}
