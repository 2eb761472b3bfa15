// Command kwserve serves a Kwollect response file (from kwgen) at the
// Kwollect URL shape, for comparing clients on the same bytes:
//
//	kwserve -file ref.json -site lyon -period 20ms -listen 127.0.0.1:0
//	# stdout: kwserve listening on http://127.0.0.1:40123/stable
//
// GET /{stable,sid,3.0}/sites/{site}/metrics answers the whole file, read
// from disk for every request (io.Copy, which uses sendfile), whatever the
// query parameters: set the client's window so that it covers the file.
// GET /{prefix}/sites/{site}/clusters/{cluster} answers a minimal metric
// catalogue in which wattmetre_power_watt has period 1000 ms and
// optional_period -period, so that clients size their chunks as they would
// on Grid'5000. Anything else is a plain-text 404, as the reference API does.
//
// Every request is logged to stderr and, with -log, appended to a file as one
// line: "<n> metrics|catalog|other <status> <bytes> <duration> <URI>".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kwserve:", err)
		os.Exit(2)
	}
}

type server struct {
	file   string
	site   string
	period time.Duration

	mu   sync.Mutex
	n    int
	logf io.Writer // nil: stderr only
}

func run(args []string) error {
	fs := flag.NewFlagSet("kwserve", flag.ContinueOnError)
	file := fs.String("file", "", "the response file to serve (required)")
	site := fs.String("site", "lyon", "the site the file belongs to (other sites get a 404)")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	period := fs.Duration("period", 20*time.Millisecond, "optional_period of wattmetre_power_watt in the catalogue (the file's row period)")
	logPath := fs.String("log", "", "append one line per request to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *file == "" {
		return errors.New("-file is required")
	}
	if _, err := os.Stat(*file); err != nil {
		return err
	}
	s := &server{file: *file, site: *site, period: *period}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		s.logf = f
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("kwserve listening on http://%s/stable\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	for _, prefix := range []string{"stable", "sid", "3.0"} {
		mux.HandleFunc("GET /"+prefix+"/sites/{site}/metrics", s.metrics)
		mux.HandleFunc("GET /"+prefix+"/sites/{site}/clusters/{cluster}", s.catalog)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.notFound(w, r, "other")
	})
	return mux
}

// statusWriter records the status and the body size.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the sendfile path of the underlying ResponseWriter.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

func (s *server) logRequest(kind string, r *http.Request, sw *statusWriter, began time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	line := fmt.Sprintf("%d %s %d %d %s %s", s.n, kind, status, sw.n, time.Since(began).Round(time.Microsecond), r.URL.RequestURI())
	log.Print("kwserve: " + line)
	if s.logf != nil {
		fmt.Fprintln(s.logf, line)
	}
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request, kind string) {
	sw := &statusWriter{ResponseWriter: w}
	defer s.logRequest(kind, r, sw, time.Now())
	sw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	sw.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(sw, "Cannot find resource %s\n", r.URL.Path)
}

func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("site") != s.site {
		s.notFound(w, r, "metrics")
		return
	}
	began := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer s.logRequest("metrics", r, sw, began)
	f, err := os.Open(s.file)
	if err != nil {
		http.Error(sw, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(sw, err.Error(), http.StatusInternalServerError)
		return
	}
	sw.Header().Set("Content-Type", "application/json")
	sw.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	sw.WriteHeader(http.StatusOK)
	if _, err := io.Copy(sw, f); err != nil {
		log.Printf("kwserve: sending %s: %v", s.file, err)
	}
}

func (s *server) catalog(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("site") != s.site {
		s.notFound(w, r, "catalog")
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	defer s.logRequest("catalog", r, sw, time.Now())
	cl := r.PathValue("cluster")
	sw.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(sw, `{"uid":%q,"type":"cluster","metrics":[{"name":"wattmetre_power_watt","description":"Power consumption of node reported by wattmetre, in watt","period":1000,"optional_period":%d,"source":{"protocol":"wattmetre"}}]}`,
		cl, s.period.Milliseconds())
}
