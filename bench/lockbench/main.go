// lockbench: the client side of the lock benchmark against etcd
// (bench/run.py, scenario `lock`; docs/benchmarks.md "Lock service against
// etcd").
//
// Every client goroutine owns one lock (its own etcd key or smc object) and
// loops acquire -> release, one request at a time, on its own connection:
//
//   - smc: PUT /machine/lock/object/<id>/transition/acquire?expect_version=V
//     with {"owner": "<client>"}, then .../transition/release?expect_version=V+1
//     with the same owner, over keep-alive HTTP/1.1 (one http.Transport, so one
//     TCP connection, per goroutine). An op counts as done only on 200 with the
//     expected state, version and transition and without "duplicate"; every
//     other answer is an error, counted by kind. The first time, the object is
//     created (`create`, expect_version=0), outside the measured window.
//   - etcd: the same loop as compare-and-swap transactions with the official
//     client (one clientv3.Client, so one gRPC connection, per goroutine):
//     acquire = Txn If(value == "free") Then Put(owner), release = Txn
//     If(value == owner) Then Put("free"). The key is created "free" the first
//     time (Txn If(create_revision == 0) Then Put("free")), outside the measured
//     window, as smc's object is. An op counts only when the Txn succeeded.
//
// Mode get: -gets GETs in total spread over the clients, each reading its own
// lock (smc: GET /machine/lock/object/<id>; etcd: a linearizable Get), no
// warm-up, no writes; the objects must exist (a lock run with the same -ids
// made them).
//
// The clock: every goroutine first sets its lock up, then -warmup seconds run
// unmeasured, then -seconds are measured: an op counts (and its latency, taken
// client-side around the one request, is recorded) when it completes inside
// the measured window. The CPU time (utime+stime from /proc/<pid>/stat) of each
// -pids process and of this process is read at both ends of the window.
// Prints one JSON object on stdout; progress and errors go to stderr.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type opts struct {
	peer      string // smc | etcd
	mode      string // lock | get
	target    string // smc: base URL; etcd: host:port
	clients   int
	seconds   float64
	warmup    float64
	gets      int
	ids       string // object id / key prefix
	pids      string // name=pid,...
	smcWait   string
	smcQuery  string
	etcdConns int
	timeout   time.Duration
	maxShown  int
}

// errs counts errors by kind and keeps the first few messages.
type errs struct {
	mu    sync.Mutex
	kinds map[string]int64
	shown []string
	max   int
}

func (e *errs) add(kind, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.kinds[kind]++
	if len(e.shown) < e.max {
		e.shown = append(e.shown, kind+": "+msg)
		fmt.Fprintf(os.Stderr, "lockbench: %s: %s\n", kind, msg)
	}
}

func (e *errs) total() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n int64
	for _, v := range e.kinds {
		n += v
	}
	return n
}

// A peer's lock, as one client sees it.
type locker interface {
	setup() error
	acquire() (string, string) // "" or an error kind and message
	release() (string, string)
	get() (string, string)
	close()
}

// ---- smc over REST ----

type smcLock struct {
	o       *opts
	hc      *http.Client
	id      string
	owner   string
	version int64
	state   string
}

type smcAnswer struct {
	Object     string          `json:"object"`
	State      string          `json:"state"`
	Version    int64           `json:"version"`
	Transition string          `json:"transition"`
	Duplicate  bool            `json:"duplicate"`
	Outcome    string          `json:"outcome"`
	Error      json.RawMessage `json:"error"`
}

func newSMC(o *opts, i int) *smcLock {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     0,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &smcLock{o: o, hc: &http.Client{Transport: tr, Timeout: o.timeout},
		id: fmt.Sprintf("%s-c%d", o.ids, i), owner: fmt.Sprintf("c%d", i)}
}

func (s *smcLock) do(method, path string, body []byte) (int, *smcAnswer, string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.o.target+path, rd)
	if err != nil {
		return 0, nil, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, nil, "", err
	}
	var a smcAnswer
	if jerr := json.Unmarshal(raw, &a); jerr != nil {
		return resp.StatusCode, nil, string(raw), nil
	}
	return resp.StatusCode, &a, string(raw), nil
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// transition proposes t at the version the client knows and checks the answer.
func (s *smcLock) transition(t, want string, data []byte) (string, string) {
	path := fmt.Sprintf("/machine/lock/object/%s/transition/%s?expect_version=%d", s.id, t, s.version)
	if s.o.smcWait != "" {
		path += "&wait=" + s.o.smcWait
	}
	if s.o.smcQuery != "" {
		path += "&" + s.o.smcQuery
	}
	code, a, raw, err := s.do("PUT", path, data)
	if err != nil {
		s.resync()
		return "transport", err.Error()
	}
	if code != 200 {
		s.resync()
		return "http_" + strconv.Itoa(code), t + " " + short(raw)
	}
	if a == nil || a.State != want || a.Version != s.version+1 || a.Transition != t || a.Duplicate ||
		(a.Outcome != "" && a.Outcome != "committed") {
		s.resync()
		return "not_committed", t + " " + short(raw)
	}
	s.version, s.state = a.Version, a.State
	return "", ""
}

// resync reads the object after an error so the loop goes on from its state.
func (s *smcLock) resync() {
	code, a, _, err := s.do("GET", "/machine/lock/object/"+s.id, nil)
	if err == nil && code == 200 && a != nil {
		s.version, s.state = a.Version, a.State
	}
}

func (s *smcLock) setup() error {
	s.version = 0
	code, a, raw, err := s.do("PUT", fmt.Sprintf("/machine/lock/object/%s/transition/create?expect_version=0&wait=30s", s.id), []byte("{}"))
	if err != nil {
		return err
	}
	if code == 200 && a != nil {
		s.version, s.state = a.Version, a.State
		return nil
	}
	if code != 409 { // 409: it exists already (a rerun with the same -ids)
		return fmt.Errorf("create %s: HTTP %d %s", s.id, code, short(raw))
	}
	s.resync()
	if s.state == "held" {
		if k, m := s.release(); k != "" {
			return fmt.Errorf("release %s: %s %s", s.id, k, m)
		}
	}
	if s.state != "free" {
		return fmt.Errorf("object %s is %q", s.id, s.state)
	}
	return nil
}

func (s *smcLock) acquire() (string, string) {
	if s.state != "free" {
		if k, m := s.release(); k != "" {
			return k, m
		}
	}
	return s.transition("acquire", "held", []byte(`{"owner":"`+s.owner+`"}`))
}

func (s *smcLock) release() (string, string) {
	return s.transition("release", "free", []byte(`{"owner":"`+s.owner+`"}`))
}

func (s *smcLock) get() (string, string) {
	code, a, raw, err := s.do("GET", "/machine/lock/object/"+s.id, nil)
	if err != nil {
		return "transport", err.Error()
	}
	if code != 200 {
		return "http_" + strconv.Itoa(code), "get " + short(raw)
	}
	if a == nil || a.Object != s.id || a.Version < 1 {
		return "bad_answer", "get " + short(raw)
	}
	return "", ""
}

func (s *smcLock) close() { s.hc.CloseIdleConnections() }

// ---- etcd over gRPC ----

type etcdLock struct {
	o     *opts
	c     *clientv3.Client
	key   string
	owner string
	held  bool
}

// etcdClients: with -etcd-conns N > 0, client i shares connection i % N
// (clientv3 multiplexes calls over one gRPC connection); 0 = one each.
var (
	etcdMu      sync.Mutex
	etcdClients = map[int]*clientv3.Client{}
)

func newEtcd(o *opts, i int) (*etcdLock, error) {
	slot := i
	if o.etcdConns > 0 {
		slot = i % o.etcdConns
	}
	etcdMu.Lock()
	defer etcdMu.Unlock()
	c := etcdClients[slot]
	if c == nil {
		var err error
		c, err = clientv3.New(clientv3.Config{Endpoints: []string{o.target}, DialTimeout: 10 * time.Second,
			Logger: zap.NewNop()})
		if err != nil {
			return nil, err
		}
		etcdClients[slot] = c
	}
	return &etcdLock{o: o, c: c, key: fmt.Sprintf("%s/c%d", o.ids, i), owner: fmt.Sprintf("c%d", i)}, nil
}

func (e *etcdLock) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.o.timeout)
}

func (e *etcdLock) cas(cmp clientv3.Cmp, val string) (string, string) {
	ctx, cancel := e.ctx()
	defer cancel()
	r, err := e.c.Txn(ctx).If(cmp).Then(clientv3.OpPut(e.key, val)).Commit()
	if err != nil {
		return "etcd_error", err.Error()
	}
	if !r.Succeeded {
		e.resync()
		return "not_committed", "compare failed on " + e.key
	}
	return "", ""
}

func (e *etcdLock) resync() {
	ctx, cancel := e.ctx()
	defer cancel()
	if r, err := e.c.Get(ctx, e.key); err == nil && len(r.Kvs) == 1 {
		e.held = string(r.Kvs[0].Value) == e.owner
	}
}

func (e *etcdLock) setup() error {
	ctx, cancel := e.ctx()
	defer cancel()
	_, err := e.c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(e.key), "=", 0)).
		Then(clientv3.OpPut(e.key, "free")).Commit()
	if err != nil {
		return err
	}
	e.resync()
	if e.held {
		if k, m := e.release(); k != "" {
			return fmt.Errorf("%s: %s", k, m)
		}
	}
	return nil
}

func (e *etcdLock) acquire() (string, string) {
	if e.held {
		if k, m := e.release(); k != "" {
			return k, m
		}
	}
	k, m := e.cas(clientv3.Compare(clientv3.Value(e.key), "=", "free"), e.owner)
	if k == "" {
		e.held = true
	}
	return k, m
}

func (e *etcdLock) release() (string, string) {
	k, m := e.cas(clientv3.Compare(clientv3.Value(e.key), "=", e.owner), "free")
	if k == "" {
		e.held = false
	}
	return k, m
}

func (e *etcdLock) get() (string, string) {
	ctx, cancel := e.ctx()
	defer cancel()
	r, err := e.c.Get(ctx, e.key) // linearizable (the default)
	if err != nil {
		return "etcd_error", err.Error()
	}
	if len(r.Kvs) != 1 {
		return "bad_answer", "no key " + e.key
	}
	return "", ""
}

func (e *etcdLock) close() {
	etcdMu.Lock()
	defer etcdMu.Unlock()
	for k, c := range etcdClients {
		if c == e.c {
			c.Close()
			delete(etcdClients, k)
		}
	}
}

// ---- CPU ----

// procCPU: utime+stime of pid in seconds. /proc/<pid>/stat counts in
// USER_HZ, which is 100 on Linux (the ABI fixes it for userspace).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(u+st) / 100.0, nil
}

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

type pidRef struct {
	name string
	pid  int
}

func parsePids(s string) ([]pidRef, error) {
	var out []pidRef
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		name, v, ok := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("bad -pids entry %q (want name=pid)", kv)
		}
		out = append(out, pidRef{name, pid})
	}
	return out, nil
}

func cpuSnap(ps []pidRef) map[string]float64 {
	m := map[string]float64{}
	for _, p := range ps {
		if v, err := procCPU(p.pid); err == nil {
			m[p.name] = v
		} else {
			fmt.Fprintf(os.Stderr, "lockbench: cpu of %s (pid %d): %v\n", p.name, p.pid, err)
		}
	}
	return m
}

// ---- the run ----

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	i := int(p*float64(len(v)-1) + 0.5)
	return v[i]
}

func round(v float64, nd int) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	f := math.Pow(10, float64(nd))
	return math.Round(v*f) / f
}

func main() {
	o := &opts{}
	flag.StringVar(&o.peer, "peer", "smc", "smc | etcd")
	flag.StringVar(&o.mode, "mode", "lock", "lock (acquire/release loop) | get (reads)")
	flag.StringVar(&o.target, "target", "", "smc: gateway base URL (http://127.0.0.1:8080); etcd: host:port")
	flag.IntVar(&o.clients, "clients", 16, "client goroutines, one lock and one connection each")
	flag.Float64Var(&o.seconds, "seconds", 12, "measured seconds (mode lock)")
	flag.Float64Var(&o.warmup, "warmup", 3, "unmeasured seconds before the measured window (mode lock)")
	flag.IntVar(&o.gets, "gets", 10000, "GETs in total (mode get)")
	flag.StringVar(&o.ids, "ids", "lb", "object id / key prefix; client i uses <ids>-c<i> (etcd: <ids>/c<i>)")
	flag.StringVar(&o.pids, "pids", "", "name=pid,...: processes whose CPU time the window measures")
	flag.StringVar(&o.smcWait, "smc-wait", "", "smc: the PUTs' wait= (empty: the gateway's default)")
	flag.StringVar(&o.smcQuery, "smc-query", "", "smc: more query parameters for the PUTs (e.g. ack=confirmed)")
	flag.IntVar(&o.etcdConns, "etcd-conns", 0, "etcd: gRPC connections shared by the clients (0: one per client)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "per-request timeout")
	flag.IntVar(&o.maxShown, "show-errors", 10, "error messages printed to stderr (all are counted)")
	flag.Parse()
	if o.target == "" || (o.peer != "smc" && o.peer != "etcd") || (o.mode != "lock" && o.mode != "get") ||
		o.clients < 1 {
		flag.Usage()
		os.Exit(2)
	}
	o.target = strings.TrimRight(o.target, "/")
	pids, err := parsePids(o.pids)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockbench:", err)
		os.Exit(2)
	}

	// Connect and set every lock up, in parallel.
	locks := make([]locker, o.clients)
	var wg sync.WaitGroup
	setupErr := make([]error, o.clients)
	for i := range locks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var l locker
			if o.peer == "smc" {
				l = newSMC(o, i)
			} else {
				e, err := newEtcd(o, i)
				if err != nil {
					setupErr[i] = err
					return
				}
				l = e
			}
			locks[i] = l
			if o.mode == "lock" {
				setupErr[i] = l.setup()
			}
		}(i)
	}
	wg.Wait()
	for i, err := range setupErr {
		if err != nil {
			fmt.Fprintf(os.Stderr, "lockbench: client %d setup: %v\n", i, err)
			os.Exit(1)
		}
	}

	e := &errs{kinds: map[string]int64{}, shown: []string{}, max: o.maxShown}
	warmErrs := &errs{kinds: map[string]int64{}, max: o.maxShown}
	lat := make([][]float64, o.clients)
	var t0, t1 time.Time
	var cpu0, cpu1 map[string]float64
	var self0, self1 float64
	var getsLeft atomic.Int64
	getsLeft.Store(int64(o.gets))

	start := time.Now()
	if o.mode == "lock" {
		t0 = start.Add(time.Duration(o.warmup * float64(time.Second)))
	} else {
		t0 = start
		cpu0, self0 = cpuSnap(pids), selfCPU()
	}
	t1 = t0.Add(time.Duration(o.seconds * float64(time.Second)))
	for i := range locks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l := locks[i]
			var mine []float64
			step := 0
			for {
				var kind, msg string
				a := time.Now()
				if o.mode == "get" {
					if getsLeft.Add(-1) < 0 {
						break
					}
					kind, msg = l.get()
				} else {
					if !a.Before(t1) {
						break
					}
					if step == 0 {
						kind, msg = l.acquire()
					} else {
						kind, msg = l.release()
					}
				}
				b := time.Now()
				inWindow := o.mode == "get" || (!b.Before(t0) && b.Before(t1))
				if kind != "" {
					if inWindow {
						e.add(kind, msg)
					} else {
						warmErrs.add(kind, msg)
					}
					// the lock's state was read again: go on from it
					if sl, ok := l.(*smcLock); ok {
						step = map[bool]int{true: 0, false: 1}[sl.state == "free"]
					} else if el, ok := l.(*etcdLock); ok {
						step = map[bool]int{true: 1, false: 0}[el.held]
					}
					continue
				}
				if inWindow {
					mine = append(mine, float64(b.Sub(a).Nanoseconds())/1e6)
				}
				step ^= 1
			}
			lat[i] = mine
		}(i)
	}
	if o.mode == "lock" {
		time.Sleep(time.Until(t0))
		cpu0, self0 = cpuSnap(pids), selfCPU()
		time.Sleep(time.Until(t1))
		cpu1, self1 = cpuSnap(pids), selfCPU()
		t1 = time.Now()
		wg.Wait()
	} else {
		wg.Wait()
		t1 = time.Now()
		cpu1, self1 = cpuSnap(pids), selfCPU()
	}
	for _, l := range locks {
		l.close()
	}

	var all []float64
	for _, v := range lat {
		all = append(all, v...)
	}
	sort.Float64s(all)
	secs := t1.Sub(t0).Seconds()
	sum := 0.0
	for _, v := range all {
		sum += v
	}
	cpu := map[string]any{}
	for k, v := range cpu1 {
		if b, ok := cpu0[k]; ok {
			cpu[k] = round(v-b, 3)
		}
	}
	n := len(all)
	mean := math.NaN()
	if n > 0 {
		mean = sum / float64(n)
	}
	res := map[string]any{
		"peer": o.peer, "mode": o.mode, "clients": o.clients, "seconds": round(secs, 3),
		"ops": n, "ops_per_s": round(float64(n)/secs, 1),
		"p50_ms": round(pct(all, 0.5), 3), "p99_ms": round(pct(all, 0.99), 3),
		"p999_ms": round(pct(all, 0.999), 3), "max_ms": round(pct(all, 1), 3),
		"mean_ms": round(mean, 3),
		"errors":  e.total(), "error_kinds": e.kinds, "error_samples": e.shown,
		"warmup_errors": warmErrs.total(),
		"cpu_s":         cpu, "driver_cpu_s": round(self1-self0, 3),
		"driver_cores": round((self1-self0)/secs, 3),
	}
	if n > 0 {
		res["driver_cpu_ms_per_op"] = round((self1-self0)*1000/float64(n), 4)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if e.total() > 0 {
		fmt.Fprintf(os.Stderr, "lockbench: %s %s %d clients: %d ERRORS %v\n", o.peer, o.mode, o.clients, e.total(), e.kinds)
		os.Exit(3)
	}
}
