package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The control endpoint (Config.Control) drives the emulator at runtime:
//
//	GET    /_emulator/faults     rules with their counters (JSON array)
//	POST   /_emulator/faults     append rules (object, JSON string spec, {"spec": ...}, or array)
//	PUT    /_emulator/faults     replace the rules (counters and random sequence restart)
//	DELETE /_emulator/faults     clear them (204)
//	GET    /_emulator/stats      Stats
//	GET    /_emulator/jobs       jobs; POST adds one (201)
//	GET    /_emulator/monitor    monitored nodes; POST adds some
//	GET    /_emulator/blackhole  {"blackhole": bool}; PUT sets it, DELETE turns it off
//
// Every request needs "Authorization: Bearer <ControlToken>" or, when users
// are configured, the API's Basic credentials (401 otherwise); every request
// but GET/HEAD needs "Content-Type: application/json" (415 otherwise), so a
// web page cannot drive it with a "simple" cross-site request. It is never
// faulted nor black-holed, and not counted in the stats.

const controlPrefix = "/_emulator"

const maxControlBody = 1 << 20

// ErrJobExists is returned by AddJob for an id already known at the site.
var ErrJobExists = errors.New("emulator: job already exists")

func controlError(w http.ResponseWriter, status int, err error) {
	b, _ := json.Marshal(map[string]string{"error": strings.TrimPrefix(err.Error(), "emulator: ")})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func readControlBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxControlBody {
		return nil, errors.New("body too large")
	}
	return data, nil
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		controlError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// isJSON tells whether a Content-Type is application/json (parameters
// such as charset allowed).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request) {
	user, ok := e.controlAuthorized(r)
	if !ok {
		writeControlUnauthorized(w)
		return
	}
	if rec := recorder(w); rec != nil {
		rec.user = user
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !get && !isJSON(r.Header.Get("Content-Type")) {
		controlError(w, http.StatusUnsupportedMediaType,
			fmt.Errorf("control endpoint: %s needs Content-Type: application/json", r.Method))
		return
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case controlPrefix + "/faults":
		switch {
		case get:
			e.writeFaults(w, http.StatusOK)
		case r.Method == http.MethodPost || r.Method == http.MethodPut:
			data, err := readControlBody(r)
			if err != nil {
				controlError(w, http.StatusBadRequest, err)
				return
			}
			rules, err := decodeFaults(data, e.start, e.now())
			if err == nil {
				if r.Method == http.MethodPut {
					err = e.SetFaults(rules)
				} else {
					err = e.AddFaults(rules...)
				}
			}
			if err != nil {
				controlError(w, http.StatusBadRequest, err)
				return
			}
			e.writeFaults(w, http.StatusOK)
		case r.Method == http.MethodDelete:
			_ = e.SetFaults(nil)
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, "GET, POST, PUT, DELETE")
		}
	case controlPrefix + "/stats":
		if !get {
			methodNotAllowed(w, "GET")
			return
		}
		writeJSONStatus(w, http.StatusOK, controlStats{e.Stats(), e.Flight()})
	case controlPrefix + "/jobs":
		switch {
		case get:
			out := []jobJSON{}
			for _, j := range e.Jobs() {
				out = append(out, toJobJSON(j))
			}
			writeJSONStatus(w, http.StatusOK, out)
		case r.Method == http.MethodPost:
			data, err := readControlBody(r)
			var j Job
			if err == nil {
				j, err = decodeJob(data, e.start, e.now())
			}
			if err != nil {
				controlError(w, http.StatusBadRequest, err)
				return
			}
			if err := e.AddJob(j); err != nil {
				status := http.StatusBadRequest
				if errors.Is(err, ErrJobExists) {
					status = http.StatusConflict
				}
				controlError(w, status, err)
				return
			}
			writeJSONStatus(w, http.StatusCreated, toJobJSON(j))
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case controlPrefix + "/monitor":
		switch {
		case get:
			writeJSONStatus(w, http.StatusOK, map[string][]string{"nodes": e.MonitoredNodes()})
		case r.Method == http.MethodPost:
			data, err := readControlBody(r)
			var nodes []string
			if err == nil {
				nodes, err = decodeNodes(data)
			}
			if err == nil {
				err = e.Monitor(nodes...)
			}
			if err != nil {
				controlError(w, http.StatusBadRequest, err)
				return
			}
			writeJSONStatus(w, http.StatusOK, map[string][]string{"nodes": e.MonitoredNodes()})
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case controlPrefix + "/blackhole":
		switch {
		case get:
		case r.Method == http.MethodPut:
			data, err := readControlBody(r)
			var on bool
			if err == nil {
				on, err = decodeBlackhole(data)
			}
			if err != nil {
				controlError(w, http.StatusBadRequest, err)
				return
			}
			e.SetBlackhole(on)
		case r.Method == http.MethodDelete:
			e.SetBlackhole(false)
		default:
			methodNotAllowed(w, "GET, PUT, DELETE")
			return
		}
		writeJSONStatus(w, http.StatusOK, map[string]bool{"blackhole": e.Blackhole()})
	default:
		notFound(w, r.URL.Path)
	}
}

// decodeBlackhole reads {"blackhole": true|false}.
func decodeBlackhole(data []byte) (bool, error) {
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil || v == nil {
		return false, errors.New(`want {"blackhole": true|false}`)
	}
	on, ok := v["blackhole"].(bool)
	if !ok || len(v) != 1 {
		return false, errors.New(`want {"blackhole": true|false}`)
	}
	return on, nil
}

func (e *Emulator) writeFaults(w http.ResponseWriter, status int) {
	out := []faultJSON{}
	for _, s := range e.Faults() {
		out = append(out, toFaultJSON(s))
	}
	writeJSONStatus(w, status, out)
}

// jobJSON is the control endpoint's form of a job.
type jobJSON struct {
	ID    int64    `json:"id"`
	Site  string   `json:"site,omitempty"`
	Nodes []string `json:"nodes"`
	Start string   `json:"start"`
	Stop  *string  `json:"stop"` // null: still running
	Types []string `json:"types"`
}

func toJobJSON(j Job) jobJSON {
	out := jobJSON{ID: j.ID, Site: j.Site, Nodes: append([]string{}, j.Nodes...),
		Start: FormatTimestamp(j.Start), Types: append([]string{}, j.Types...)}
	if !j.Stop.IsZero() {
		s := FormatTimestamp(j.Stop)
		out.Stop = &s
	}
	return out
}

// stringList accepts a JSON array of strings or a comma-separated string.
func stringList(v any) ([]string, error) {
	var parts []string
	switch x := v.(type) {
	case nil:
	case string:
		parts = strings.Split(x, ",")
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("want strings")
			}
			parts = append(parts, s)
		}
	default:
		return nil, errors.New("want an array of strings or a comma list")
	}
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// timeValue reads a job time: a string (ParseTimeSpec) or a number (epoch
// seconds).
func timeValue(v any, start, now time.Time) (time.Time, error) {
	switch x := v.(type) {
	case string:
		return ParseTimeSpec(x, start, now)
	case json.Number:
		return ParseTimeSpec(x.String(), start, now)
	}
	return time.Time{}, errors.New("want a string or a number")
}

// decodeJob reads {id, site, nodes, start, stop, types}: nodes and types
// as arrays or comma lists, times as ParseTimeSpec strings or epoch
// seconds; start defaults to now, no stop = still running.
func decodeJob(data []byte, start, now time.Time) (Job, error) {
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return Job{}, errors.New("want a JSON object {id, site, nodes, start, stop, types}")
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	j := Job{Start: now}
	hasID := false
	for _, k := range keys {
		v := obj[k]
		var err error
		switch k {
		case "id":
			var s string
			switch x := v.(type) {
			case json.Number:
				s = x.String()
			case string:
				s = x
			}
			j.ID, err = strconv.ParseInt(s, 10, 64)
			hasID = err == nil
		case "site":
			if v != nil {
				s, ok := v.(string)
				if !ok {
					err = errors.New("want a string")
				}
				j.Site = s
			}
		case "nodes":
			j.Nodes, err = stringList(v)
		case "types":
			j.Types, err = stringList(v)
		case "start":
			if v != nil {
				j.Start, err = timeValue(v, start, now)
			}
		case "stop":
			if v != nil {
				j.Stop, err = timeValue(v, start, now)
			}
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return Job{}, fmt.Errorf("%s: %v", k, err)
		}
	}
	if !hasID {
		return Job{}, errors.New("id: want an integer")
	}
	if len(j.Nodes) == 0 {
		return Job{}, errors.New("nodes: none given")
	}
	return j, nil
}

// decodeNodes reads {"nodes": [...]} (or a comma list), or a bare array.
func decodeNodes(data []byte) ([]string, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, errors.New(`want {"nodes": ["node", ...]}`)
	}
	if obj, ok := v.(map[string]any); ok {
		for k := range obj {
			if k != "nodes" {
				return nil, fmt.Errorf("unknown key %q", k)
			}
		}
		v = obj["nodes"]
	}
	nodes, err := stringList(v)
	if err == nil && len(nodes) == 0 {
		err = errors.New("no nodes given")
	}
	return nodes, err
}
