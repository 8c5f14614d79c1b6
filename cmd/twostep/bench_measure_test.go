package main

// Measurement for the load benchmarks: the server's own metrics before,
// during and after a load (to show nothing grows without bound), CPU use of
// this process, PostgreSQL and everything else from /proc, and latency
// percentiles.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchMetrics are samples from the server's /metrics, by metric name
// (labels dropped; each metric used here has one series).
type benchMetrics map[string]float64

// The gauges that show whether the server grows under load. The process
// is the test binary, so goroutines and heap count the clients too.
const (
	metricGoroutines = "go_goroutines"
	metricDBOpen     = "go_sql_open_connections"
	metricDBBound    = "go_sql_max_open_connections"
	metricDBWaits    = "go_sql_wait_count_total"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
)

// benchGoroutineSlack is how many more goroutines than before the load
// benchGrowth allows once the clients have closed their connections.
const benchGoroutineSlack = 5

// metrics reads the server's /metrics (Prometheus text format).
func (srv *benchServer) metrics(ctx context.Context) (benchMetrics, error) {
	body, err := srv.get(ctx, srv.issuer+"/metrics")
	if err != nil {
		return nil, err
	}
	m := benchMetrics{}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line+" ", "{ ")]
		if _, ok := m[name]; ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		m[name] = v
	}
	for _, name := range []string{metricGoroutines, metricDBOpen, metricDBBound, metricDBWaits, metricHeapInuse} {
		if _, ok := m[name]; !ok {
			return nil, fmt.Errorf("metrics: no %s in %.300s", name, body)
		}
	}
	return m, nil
}

// peakMetrics reads /metrics four times a second until stop is closed and
// returns the highest value each metric had.
func (srv *benchServer) peakMetrics(ctx context.Context, stop <-chan struct{}) benchMetrics {
	peak := benchMetrics{}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
		m, err := srv.metrics(ctx)
		if err != nil {
			continue // the load itself fails and says why
		}
		for name, v := range m {
			peak[name] = max(peak[name], v)
		}
	}
}

// benchGrowth reads /metrics once the load has ended and reports the
// server's goroutines, open database connections and heap in use (after a
// GC). It logs them beside their values before and during the load and
// after the clients closed their keep-alive connections, which hold three
// goroutines each (the server's, and the client's reader and writer), and
// fails the benchmark if the open connections ever exceeded the pool's
// bound.
func (srv *benchServer) benchGrowth(b *testing.B, before, during benchMetrics) {
	b.Helper()
	ctx := context.Background()
	runtime.GC()
	after, err := srv.metrics(ctx)
	if err != nil {
		b.Fatalf("metrics after the load: %v", err)
	}
	b.ReportMetric(after[metricGoroutines], "goroutines")
	b.ReportMetric(after[metricDBOpen], "db-conns")
	b.ReportMetric(after[metricHeapInuse]/(1<<20), "heap-MiB")

	bound := after[metricDBBound]
	if most := max(during[metricDBOpen], after[metricDBOpen]); bound > 0 && most > bound {
		b.Errorf("open database connections: got %v, want at most the pool's bound, %v", most, bound)
	}

	// Once the clients hang up, the goroutines must fall back to about
	// where they were before the load: all the load may add are the
	// connections' goroutines.
	srv.transport.CloseIdleConnections()
	var idle benchMetrics
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if idle, err = srv.metrics(ctx); err != nil {
			b.Fatalf("metrics after closing the connections: %v", err)
		}
		if idle[metricGoroutines] <= before[metricGoroutines] || time.Now().After(deadline) {
			break
		}
	}
	if idle[metricGoroutines] > before[metricGoroutines]+benchGoroutineSlack {
		b.Errorf("goroutines once the clients closed their connections: got %v, want at most %v (%v before the load)",
			idle[metricGoroutines], before[metricGoroutines]+benchGoroutineSlack, before[metricGoroutines])
	}
	runtime.GC()
	idleHeap := idle[metricHeapInuse]
	if m, err := srv.metrics(ctx); err == nil {
		idleHeap = m[metricHeapInuse]
	}
	b.Logf("goroutines %v before the load, peak %v, %v after it, %v once the clients closed their connections",
		before[metricGoroutines], during[metricGoroutines], after[metricGoroutines], idle[metricGoroutines])
	b.Logf("db connections %v before, peak %v, %v after (bound %v); %v waits for a free connection during the load",
		before[metricDBOpen], during[metricDBOpen], after[metricDBOpen], bound, after[metricDBWaits]-before[metricDBWaits])
	b.Logf("heap in use %.1f MiB before, %.1f MiB after, %.1f MiB once the connections were closed (each after a GC)",
		before[metricHeapInuse]/(1<<20), after[metricHeapInuse]/(1<<20), idleHeap/(1<<20))
}

// benchCPU is the CPU time used so far by this process, by the local
// PostgreSQL server's processes and by the whole machine (every state but
// idle and iowait, steal included), read from /proc on Linux; ok is false
// elsewhere.
type benchCPU struct {
	self, postgres, busy time.Duration
	ok                   bool
}

// benchTick is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const benchTick = 10 * time.Millisecond

// sampleBenchCPU reads the CPU time used so far.
func sampleBenchCPU() benchCPU {
	_, self, ok := benchProcCPU("/proc/self/stat")
	if !ok {
		return benchCPU{}
	}
	all, err := os.ReadFile("/proc/stat")
	if err != nil {
		return benchCPU{}
	}
	line, _, _ := strings.Cut(string(all), "\n")
	g := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(g) < 9 || g[0] != "cpu" {
		return benchCPU{}
	}
	var busy int64
	for _, v := range []string{g[1], g[2], g[3], g[6], g[7], g[8]} { // user nice system irq softirq steal
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return benchCPU{}
		}
		busy += n
	}
	return benchCPU{self: self, postgres: benchPostgresCPU(), busy: time.Duration(busy) * benchTick, ok: true}
}

// benchPostgresCPU is the CPU time used so far by the processes named
// "postgres": the server and its backends, with the backends that have
// exited and been reaped counted in the server's children's time.
func benchPostgresCPU() time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var sum time.Duration
	for _, path := range stats {
		if comm, d, ok := benchProcCPU(path); ok && comm == "postgres" {
			sum += d
		}
	}
	return sum
}

// benchProcCPU reads a /proc/PID/stat file: the command name, and the
// CPU time of the process and of its reaped children (proc(5): utime,
// stime, cutime and cstime are fields 14 to 17).
func benchProcCPU(path string) (comm string, cpu time.Duration, ok bool) {
	stat, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	// The fields after "(comm) " start with the state, field 3.
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 15 {
		return "", 0, false
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", 0, false
		}
		ticks += n
	}
	return string(stat[open+1 : end]), time.Duration(ticks) * benchTick, true
}

// benchPercentile returns the nearest-rank p-th percentile of sorted.
func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
