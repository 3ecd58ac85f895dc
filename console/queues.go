package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/queue"
)

// Queue is one of the gateway's spools as the operations pages use it (queue.Spool).
type Queue interface {
	List() ([]queue.Info, error)
	Retry(id string) error
	Delete(id string) error
}

type entryRow struct {
	ID, Class, Domains, NextAttempt, Expires, LastError string
	Pending, Attempts                                   int
	Age                                                 string
}

type queueData struct {
	Name    string
	Entries []entryRow
	pages
}

// queueNamed is the queue the path names, answering with a page when there is none.
func (s *Server) queueNamed(w http.ResponseWriter, r *http.Request, rq *request) (string, Queue, bool) {
	name := r.PathValue("name")
	q, ok := s.d.Queues[name]
	if !ok {
		s.problem(w, r, rq, http.StatusNotFound, "No such queue", "The gateway has no queue of this name.")
		return "", nil, false
	}
	return name, q, true
}

func (s *Server) queueList(w http.ResponseWriter, r *http.Request, rq *request) {
	name, q, ok := s.queueNamed(w, r, rq)
	if !ok {
		return
	}
	page, ok := s.pageNumber(w, r, rq)
	if !ok {
		return
	}
	infos, err := q.List()
	if err != nil {
		s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The queue cannot be read now.")
		return
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Created.Before(infos[j].Created) }) // oldest first: what waits longest
	p, ok := s.paging(w, r, rq, page, len(infos))
	if !ok {
		return
	}
	now := s.d.Now()
	d := queueData{Name: name, pages: p}
	for _, in := range infos[p.from:p.to] {
		row := entryRow{ID: in.ID, Class: cleanLine(in.Class, 40), Age: age(now.Sub(in.Created)),
			NextAttempt: in.NextAttempt.UTC().Format("2006-01-02 15:04"), Expires: in.Expires.UTC().Format("2006-01-02 15:04")}
		domains := map[string]bool{}
		for _, rc := range in.Recipients {
			domains[address.Domain(rc.Address)] = true // domains only: addresses are the customers'
			if rc.Status == "pending" {
				row.Pending++
			}
			row.Attempts = max(row.Attempts, rc.Attempts)
			if rc.LastError != "" {
				row.LastError = cleanLine(rc.LastError, 200)
			}
		}
		var ds []string
		for dm := range domains {
			ds = append(ds, cleanLine(dm, 100))
		}
		sort.Strings(ds)
		row.Domains = strings.Join(ds, ", ")
		d.Entries = append(d.Entries, row)
	}
	s.render(w, r, rq, http.StatusOK, "queue.html", "Queue "+name, d, "")
}

func (s *Server) queueAction(w http.ResponseWriter, r *http.Request, rq *request) {
	name, q, ok := s.queueNamed(w, r, rq)
	if !ok {
		return
	}
	id, action := r.PathValue("id"), r.PathValue("action")
	if action != "retry" && action != "delete" {
		s.problem(w, r, rq, http.StatusNotFound, "Not found", "There is no such action.")
		return
	}
	why := strings.Join(strings.Fields(r.PostForm.Get("reason")), " ")
	if action == "delete" && (why == "" || len([]rune(why)) > maxReason) {
		s.problem(w, r, rq, http.StatusBadRequest, "A reason is required", fmt.Sprintf("A reason of 1 to %d characters is required to delete a queued message. Nothing was changed.", maxReason))
		return
	}
	var err error
	if action == "retry" {
		err = q.Retry(id)
	} else {
		err = q.Delete(id)
	}
	switch {
	case errors.Is(err, queue.ErrNotFound):
		s.problem(w, r, rq, http.StatusNotFound, "Not in the queue", "No entry of this queue has this id (delivered or deleted meanwhile?). Nothing was changed.")
		return
	case err != nil:
		s.d.Log.Error("console: queue action", "action", action, "err", err.Error())
		s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The queue could not be changed now.")
		return
	}
	s.audit(r.Context(), rq.account.Name, "console.queue-"+action, name+"/"+id, http.StatusOK, why)
	s.recordQueueAction(r.Context(), name, action, id, "console:"+rq.account.Name, why)
	http.Redirect(w, r, "/operations/queue/"+url.PathEscape(name), http.StatusSeeOther)
}

// recordQueueAction records an operator's retry or delete in the evidence log (through the store's
// outbox, as decisions on held mail are): the queue spool itself records each recipient a delete
// left without the message; this names who did it and why.
func (s *Server) recordQueueAction(ctx context.Context, queueName, action, id, by, why string) {
	if !s.d.Evidence || s.d.Outbox == nil {
		return
	}
	rec, err := json.Marshal(&evidence.Record{Time: s.d.Now().UTC(), Kind: evidence.KindAction, Action: &evidence.Action{
		Actor: by, Action: "queue-" + map[string]string{"retry": "retried", "delete": "deleted"}[action], Subject: id, Reason: why,
		Detail: "the " + queueName + " queue"}})
	if err == nil {
		err = s.d.Outbox.QueueEvidence(context.WithoutCancel(ctx), "", rec)
	}
	if err != nil {
		s.d.Log.Error("console: the queue action is done but not recorded in the evidence log", "action", action, "id", id, "err", err.Error())
	}
}
