// Package gitops keeps Vapi's assistants, tools, squads, structured outputs
// and phone numbers as code: it reads the layout VapiAI/gitops established
// (one folder per org; a file per resource, named by its id), plans the
// changes field by field against what Vapi holds, and applies them with a
// three-way merge, so that a setting changed only in the dashboard is
// kept, a change only in the files is applied, and a field changed on both
// sides is a conflict apply refuses unless told to overwrite.
//
// Which Vapi resource a file is, and what voicegate last applied to it,
// is kept in voicegate's store (Store), and in VapiAI/gitops' state file
// when there is one, so that both tools can be used on one org. A
// resource voicegate does not manage is never changed or deleted; a
// resource whose file is gone is deleted only with Prune.
package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/vapiapi"
)

// Credentials gives the Vapi id of voicegate's managed webhook credential,
// which every assistant, phone number and tool whose server is this
// voicegate references (internal/secrets implements it).
type Credentials interface {
	// CredentialID returns the credential's Vapi id. With create false (a
	// plan) it changes nothing and returns "" when there is none yet; with
	// create true (apply) it first creates the managed secret and its Vapi
	// credential when there are none.
	CredentialID(ctx context.Context, create bool) (string, error)
}

// Options are what a plan or an apply works with.
type Options struct {
	// Dir is the org's folder.
	Dir string
	// Org names the org in the store and in the managed-by marker
	// (default: Dir's name, as VapiAI/gitops names it).
	Org string
	// StatePath is the state file (default StatePath(Dir)); it is read and
	// written when it exists, or when CreateState.
	StatePath   string
	CreateState bool
	API         *vapiapi.Client
	Store       Store
	// Credentials, when set, gives the managed webhook credential; when
	// nil, server.credentialId is left as the files say (and a note says
	// so).
	Credentials Credentials
	// NoCredentials says why Credentials is nil, in the plan's note
	// ("": not available to this command).
	NoCredentials string
	Voicegate     Voicegate
	// ToolsFromConfig adds a tool for each of voicegate's tools
	// (GenerateTools).
	ToolsFromConfig bool
	// Prune deletes the resources voicegate manages whose file is gone.
	Prune bool
	// Overwrite applies the files' value where a field changed on both
	// sides.
	Overwrite bool
	// Out receives the plan and what apply did.
	Out io.Writer
	Now func() time.Time
}

// Summary counts a plan's resources.
type Summary struct {
	Create, Update, Delete, Conflict, Unchanged, Orphans int
	// Created, Updated and Deleted count what apply did.
	Created, Updated, Deleted int
}

// ConflictError is an apply refused: fields changed both in Vapi and in
// the files.
type ConflictError struct{ Conflicts []string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("apply refused: %d field(s) changed both in Vapi and in the files since the last apply:\n  - %s\nresolve them in the files or in Vapi, or run apply --overwrite to apply the files' values",
		len(e.Conflicts), strings.Join(e.Conflicts, "\n  - "))
}

// MarkerKey is the metadata field that marks an assistant as voicegate's
// (Vapi's schema has metadata on assistants only; the other kinds are
// known by their id alone).
const (
	MarkerKey   = "managedBy"
	MarkerValue = "voicegate"
	// MarkerIDKey names the file the assistant comes from.
	MarkerIDKey = "voicegateId"
)

// Plan prints what apply would do, changing nothing.
func Plan(ctx context.Context, o Options) (Summary, error) { return run(ctx, o, false) }

// Apply makes Vapi what the files say (three-way merged), and is
// idempotent: run again, it sends no request that changes anything.
func Apply(ctx context.Context, o Options) (Summary, error) { return run(ctx, o, true) }

type op int

const (
	opNone   op = iota
	opCreate    // no Vapi resource yet
	opUpdate    // fields to apply
	opDelete    // no file, Prune
	opOrphan    // no file, kept
	opGone      // no file, and gone from Vapi: forgotten
)

type item struct {
	kind    Kind
	id      string
	local   *Local // nil: no file
	vapiID  string
	cur     vapiapi.Resource
	base    vapiapi.Resource
	hasBase bool
	stored  *Entry // the store's entry, if any
	want    vapiapi.Resource
	changes []Change
	op      op
	notes   []string
}

func (it *item) key() string { return it.kind.Dir + "/" + it.id }

func (it *item) conflicts() int {
	n := 0
	for _, c := range it.changes {
		if c.Action == Conflict {
			n++
		}
	}
	return n
}

type engine struct {
	o       Options
	org     string
	state   *StateFile
	ids     map[string]map[string]string // kind dir -> local id -> Vapi id
	entries map[string]*Entry            // "kind/id" -> the store's entry
	current map[vapiapi.Kind]map[string]vapiapi.Resource
	lists   map[vapiapi.Kind][]vapiapi.Resource
	creds   map[string]string // credential name -> Vapi id
	// storedCreds are the credential names the store keeps (learnt from
	// a state file), so that they resolve without it.
	storedCreds map[string]string
	// forget are the store's entries the state file no longer has.
	forget [][2]string
	credID string // the managed credential ("" unknown)
	items  []*item
	notes  []string
	probs  []string
}

func run(ctx context.Context, o Options, apply bool) (Summary, error) {
	if o.API == nil || o.Store == nil {
		return Summary{}, errors.New("gitops: an API client and a store are required")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &engine{o: o, org: o.Org, ids: map[string]map[string]string{}, entries: map[string]*Entry{}, storedCreds: map[string]string{}}
	if e.org == "" {
		abs, err := filepath.Abs(o.Dir)
		if err != nil {
			return Summary{}, err
		}
		e.org = filepath.Base(abs)
	}
	locals, notes, err := Load(o.Dir)
	if err != nil {
		return Summary{}, err
	}
	e.notes = append(e.notes, notes...)
	if o.ToolsFromConfig {
		gen, err := GenerateTools(o.Voicegate)
		if err != nil {
			return Summary{}, err
		}
		have := map[string]string{}
		for _, l := range locals {
			if l.Kind.Dir == "tools" {
				have[l.ID] = l.Path
			}
		}
		var probs []string
		for _, g := range gen {
			if p, ok := have[g.ID]; ok {
				probs = append(probs, fmt.Sprintf("%s: tool %q is also generated from voicegate's tools config (--tools-from-config): keep one", p, g.ID))
			}
		}
		if len(probs) > 0 {
			return Summary{}, &ProblemsError{What: "the files", Problems: probs}
		}
		locals = append(gen, locals...)
	}
	if err := e.loadIDs(ctx); err != nil {
		return Summary{}, err
	}
	known := func(kind, id string) bool { return e.ids[kind][id] != "" }
	if probs := Validate(locals, known, o.Voicegate); len(probs) > 0 {
		return Summary{}, &ProblemsError{What: "the files (nothing was sent to Vapi)", Problems: probs}
	}
	if err := e.fetch(ctx); err != nil {
		return Summary{}, err
	}
	e.match(locals)
	if len(e.probs) > 0 {
		return Summary{}, &ProblemsError{What: "matching the files with Vapi (nothing was changed)", Problems: e.probs}
	}
	if err := e.plan(ctx); err != nil {
		return Summary{}, err
	}
	sum := e.print()
	if !apply {
		return sum, nil
	}
	var conflicts []string
	for _, it := range e.items {
		for _, c := range it.changes {
			if c.Action == Conflict {
				conflicts = append(conflicts, fmt.Sprintf("%s %s: %s: the files say %s, Vapi says %s (last applied: %s)",
					it.kind.Label, it.id, c.Field(), show(c.Path, c.Want), show(c.Path, c.Current), show(c.Path, c.Base)))
			}
		}
	}
	if len(conflicts) > 0 && !o.Overwrite {
		return sum, &ConflictError{Conflicts: conflicts}
	}
	err = e.execute(ctx, &sum)
	if sum.Created+sum.Updated+sum.Deleted == 0 && err == nil {
		fmt.Fprintln(o.Out, "\nApply: nothing to change.")
	} else {
		fmt.Fprintf(o.Out, "\nApply: %d created, %d updated, %d deleted.\n", sum.Created, sum.Updated, sum.Deleted)
	}
	return sum, err
}

// loadIDs reads the id map: the store's entries, then the state file's,
// which win where they differ (VapiAI/gitops rebound the resource; what
// voicegate last applied was another resource's, so it is dropped).
func (e *engine) loadIDs(ctx context.Context) error {
	for _, k := range Kinds() {
		e.ids[k.Dir] = map[string]string{}
	}
	entries, err := e.o.Store.VapiResources(ctx, e.org)
	if err != nil {
		return err
	}
	for i := range entries {
		en := &entries[i]
		if en.Kind == credentials {
			e.storedCreds[en.LocalID] = en.VapiID
			continue
		}
		if _, ok := e.ids[en.Kind]; !ok {
			continue
		}
		e.ids[en.Kind][en.LocalID] = en.VapiID
		e.entries[en.Kind+"/"+en.LocalID] = en
	}
	path := e.o.StatePath
	if path == "" {
		path = StatePath(e.o.Dir)
	}
	if e.state, err = ReadState(path); err != nil {
		return err
	}
	if e.state == nil && e.o.CreateState {
		e.state = NewState(path)
	}
	if e.state == nil {
		return nil
	}
	for _, k := range Kinds() {
		if !e.state.Has(k.Dir) {
			continue // a section VapiAI/gitops does not keep: the store's ids stand
		}
		sec := e.state.IDs(k.Dir)
		for id, uuid := range e.ids[k.Dir] {
			if sec[id] == "" {
				// Removed from the state file (by VapiAI/gitops, or by hand
				// for a renamed file): forgotten, its resource left alone.
				e.notes = append(e.notes, fmt.Sprintf("%s %s (%s): no longer in the state file: forgotten", k.Label, id, uuid))
				delete(e.ids[k.Dir], id)
				e.forget = append(e.forget, [2]string{k.Dir, id})
			}
		}
		for id, uuid := range sec {
			if prev := e.ids[k.Dir][id]; prev != "" && prev != uuid {
				e.notes = append(e.notes, fmt.Sprintf("%s %s: the state file binds it to %s, voicegate's store to %s: the state file wins", k.Label, id, uuid, prev))
			}
			e.ids[k.Dir][id] = uuid
		}
	}
	return nil
}

// fetch lists every resource of the kinds managed, and the credentials.
func (e *engine) fetch(ctx context.Context) error {
	e.current = map[vapiapi.Kind]map[string]vapiapi.Resource{}
	e.lists = map[vapiapi.Kind][]vapiapi.Resource{}
	kinds := []vapiapi.Kind{vapiapi.Credential}
	for _, k := range Kinds() {
		kinds = append(kinds, k.API)
	}
	for _, k := range kinds {
		all, err := e.o.API.List(ctx, k)
		if err != nil {
			return err
		}
		e.lists[k] = all
		m := map[string]vapiapi.Resource{}
		for _, r := range all {
			m[r.ID()] = r
		}
		e.current[k] = m
	}
	e.creds = map[string]string{}
	for _, c := range e.lists[vapiapi.Credential] {
		if n := c.Name(); n != "" {
			e.creds[n] = c.ID()
			if s := slug(n); s != "" {
				if _, taken := e.creds[s]; !taken {
					e.creds[s] = c.ID()
				}
			}
		}
	}
	for name, id := range e.storedCreds {
		e.creds[name] = id
	}
	for name, id := range e.state.IDs(credentials) {
		e.creds[name] = id
	}
	return nil
}

// slug is VapiAI/gitops' credential slug: lower case, runs of other
// characters as one '-'.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// identity is what names a resource in Vapi besides its id, to find one
// voicegate does not manage that a new file would duplicate.
func identity(kind Kind, r vapiapi.Resource) string {
	switch kind.Dir {
	case "tools":
		return r.String("function.name")
	case "phoneNumbers":
		if n := r.String("number"); n != "" {
			return n
		}
		return r.String("sipUri")
	}
	return r.Name()
}

// match pairs every file with its Vapi resource: through the id map, else
// (assistants) by voicegate's marker and name. A file that would create a
// resource with the name of one voicegate does not manage is a problem:
// that resource is never touched, and a duplicate is not created.
func (e *engine) match(locals []*Local) {
	claimed := map[string]bool{}
	byKey := map[string]*item{}
	// managedAs names, by Vapi id, the resources the id map binds.
	managedAs := map[string]string{}
	for _, k := range Kinds() {
		for id, uuid := range e.ids[k.Dir] {
			if prev, dup := managedAs[uuid]; dup {
				e.probs = append(e.probs, fmt.Sprintf("%s and %s/%s are both bound to %s: one Vapi resource is one file (fix the state file)", prev, k.Dir, id, uuid))
			}
			managedAs[uuid] = k.Dir + "/" + id
		}
	}
	for _, l := range locals {
		it := &item{kind: l.Kind, id: l.ID, local: l}
		e.items = append(e.items, it)
		byKey[it.key()] = it
		uuid := e.ids[l.Kind.Dir][l.ID]
		if uuid == "" {
			continue
		}
		if r, ok := e.current[l.Kind.API][uuid]; ok {
			it.vapiID, it.cur = uuid, r
			claimed[uuid] = true
			if en := e.entryOf(it.key(), uuid); en != nil && en.LastApplied != nil {
				if b, err := vapiapi.DecodeResource(en.LastApplied); err == nil {
					it.base, it.hasBase = b, true
				}
			}
		} else {
			it.notes = append(it.notes, fmt.Sprintf("%s is gone from Vapi: created again", uuid))
		}
	}
	for _, it := range e.items {
		if it.vapiID != "" {
			continue
		}
		l := it.local
		if l.Kind.Dir == "assistants" {
			marker := e.org + "/" + it.key()
			for _, r := range e.lists[vapiapi.Assistant] {
				if claimed[r.ID()] || r.String("metadata."+MarkerKey) != MarkerValue {
					continue
				}
				if mid := r.String("metadata." + MarkerIDKey); mid == marker || mid == "" && r.Name() == l.Body.Name() {
					it.vapiID, it.cur = r.ID(), r
					claimed[r.ID()] = true
					it.notes = append(it.notes, "found in Vapi by voicegate's marker")
					break
				}
			}
			if it.vapiID != "" {
				continue
			}
		}
		ident := identity(l.Kind, l.Body)
		if ident == "" {
			continue
		}
		for _, r := range e.lists[l.Kind.API] {
			if claimed[r.ID()] || identity(l.Kind, r) != ident {
				continue
			}
			if old, ok := managedAs[r.ID()]; ok {
				e.probs = append(e.probs, fmt.Sprintf("%s: %s %q is %s in Vapi, which voicegate manages as %s, whose file is gone: if the file was renamed, rename it back (or rename the entry in the state file); to replace the resource, apply --prune without the new file first",
					l.Path, l.Kind.Label, ident, r.ID(), old))
				break
			}
			e.probs = append(e.probs, fmt.Sprintf("%s: %s %q exists in Vapi (%s) but voicegate does not manage it, so it is left alone and not duplicated: to manage it, bind it in %s (\"%s\": {\"%s\": {\"uuid\": \"%s\"}}), or rename one of them",
				l.Path, l.Kind.Label, ident, r.ID(), filepath.Base(e.statePath()), l.Kind.Dir, l.ID, r.ID()))
			break
		}
	}
	// The resources voicegate manages whose file is gone.
	for _, k := range Kinds() {
		ids := make([]string, 0, len(e.ids[k.Dir]))
		for id := range e.ids[k.Dir] {
			if byKey[k.Dir+"/"+id] == nil {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			uuid := e.ids[k.Dir][id]
			it := &item{kind: k, id: id, vapiID: uuid, op: opGone}
			if r, ok := e.current[k.API][uuid]; ok && !claimed[uuid] {
				it.cur, it.op = r, opOrphan
				if e.o.Prune {
					it.op = opDelete
				}
			}
			e.items = append(e.items, it)
		}
	}
	for _, it := range e.items {
		it.stored = e.entries[it.key()]
	}
}

// entryOf is the store's entry of the resource key bound to uuid: its
// own, or that of the id it had before a rename (same Vapi id).
func (e *engine) entryOf(key, uuid string) *Entry {
	if en := e.entries[key]; en != nil && en.VapiID == uuid {
		return en
	}
	for _, en := range e.entries {
		if en.VapiID == uuid && en.Kind == strings.SplitN(key, "/", 2)[0] {
			return en
		}
	}
	return nil
}

func (e *engine) statePath() string {
	if e.o.StatePath != "" {
		return e.o.StatePath
	}
	return StatePath(e.o.Dir)
}

// desired is the object a file describes, as it is sent: the marker on
// an assistant, references resolved to Vapi ids, voicegate's managed
// credential on what voicegate serves. final (apply): a reference to a
// resource not created yet is left out and reported as deferred; else
// (plan) it shows as a placeholder.
func (e *engine) desired(it *item, final bool) (want vapiapi.Resource, deferred bool, probs []string) {
	l := it.local
	want = l.Body.Clone()
	if l.Kind.Dir == "assistants" {
		md, ok := want["metadata"].(map[string]any)
		if !ok {
			md = map[string]any{}
		}
		md[MarkerKey], md[MarkerIDKey] = MarkerValue, e.org+"/"+it.key()
		want["metadata"] = md
	}
	walkRefs(l.Kind.Dir, want, func(kind, ref string) (string, bool) {
		if uuidRE.MatchString(ref) {
			return ref, true
		}
		if kind == credentials {
			if id, ok := e.creds[ref]; ok {
				return id, true
			}
			probs = append(probs, fmt.Sprintf("%s: credential %q: Vapi has no credential of that name, and the state file's credentials do not list it", l.Path, ref))
			return ref, true
		}
		if id := e.ids[kind][ref]; id != "" {
			return id, true
		}
		if final {
			deferred = true
			return "", false
		}
		return placeholder(kind, ref), true
	})
	if _, set := l.Body.Lookup("server.credentialId"); !set && e.o.Credentials != nil && isVoicegate(want, e.o.Voicegate.URL) {
		id := e.credID
		if id == "" {
			id = managedCredentialPlaceholder
		}
		want.Set("server.credentialId", id)
	}
	return want, deferred, probs
}

// plan computes each resource's changes.
func (e *engine) plan(ctx context.Context) error {
	serves := false
	for _, it := range e.items {
		if it.local != nil && isVoicegate(it.local.Body, e.o.Voicegate.URL) {
			serves = true
		}
	}
	if serves {
		if e.o.Credentials == nil {
			why := e.o.NoCredentials
			if why == "" {
				why = "voicegate's managed webhook credential is not available to this command"
			}
			e.notes = append(e.notes, "server.credentialId of what voicegate serves is left as the files say: "+why)
		} else {
			id, err := e.o.Credentials.CredentialID(ctx, false)
			if err != nil {
				return fmt.Errorf("voicegate's webhook credential: %w", err)
			}
			e.credID = id
		}
	}
	var probs []string
	for _, it := range e.items {
		if it.local == nil {
			continue
		}
		want, _, p := e.desired(it, false)
		probs = append(probs, p...)
		it.want = want
		if it.cur == nil {
			it.op = opCreate
			continue
		}
		it.changes = Diff(it.base, it.cur, it.want, it.hasBase)
		for _, c := range it.changes {
			if c.Action != Keep {
				it.op = opUpdate
			}
		}
	}
	if len(probs) > 0 {
		return &ProblemsError{What: "resolving references (nothing was changed)", Problems: probs}
	}
	return nil
}

// execute applies the plan: creates and updates in the kinds' order, then
// the references to what was created after the resource that holds them,
// then deletions in the reverse order. Each resource's id and what was
// applied are saved as soon as Vapi has it; the state file is written at
// the end, also after a failure.
func (e *engine) execute(ctx context.Context, sum *Summary) (err error) {
	out := &lineWriter{w: e.o.Out}
	e.o.Out = out
	defer func() {
		if werr := e.writeState(); werr != nil && err == nil {
			err = werr
		}
	}()
	needCred := false
	for _, it := range e.items {
		if it.want != nil && it.want.String("server.credentialId") == managedCredentialPlaceholder {
			needCred = true
		}
	}
	if needCred {
		id, err := e.o.Credentials.CredentialID(ctx, true)
		if err != nil {
			return fmt.Errorf("voicegate's webhook credential: %w", err)
		}
		if id == "" {
			return errors.New("voicegate's webhook credential: none was created")
		}
		e.credID = id
		fmt.Fprintf(out, "voicegate's webhook credential: %s\n", id)
	}
	// The state file's credential names, kept for when it is not there.
	for name, id := range e.state.IDs(credentials) {
		if e.storedCreds[name] != id {
			if err := e.o.Store.PutVapiResource(ctx, Entry{Org: e.org, Kind: credentials, LocalID: name, VapiID: id, UpdatedAt: e.o.Now()}); err != nil {
				return err
			}
		}
	}
	var later []*item
	for _, it := range e.items {
		if it.local == nil {
			continue
		}
		deferred, err := e.applyOne(ctx, it, sum, false)
		if err != nil {
			return err
		}
		if deferred {
			later = append(later, it)
		}
	}
	for _, it := range later {
		if _, err := e.applyOne(ctx, it, sum, true); err != nil {
			return err
		}
	}
	for _, f := range e.forget {
		if err := e.o.Store.DeleteVapiResource(ctx, e.org, f[0], f[1]); err != nil {
			return err
		}
	}
	for i := len(e.items) - 1; i >= 0; i-- {
		it := e.items[i]
		switch it.op {
		case opDelete:
			if err := e.o.API.Delete(ctx, it.kind.API, it.vapiID); err != nil && !errors.Is(err, vapiapi.ErrNotFound) {
				return fmt.Errorf("delete %s %s: %w", it.kind.Label, it.id, err)
			}
			fmt.Fprintf(out, "deleted %s %s (%s)\n", it.kind.Label, it.id, it.vapiID)
			sum.Deleted++
			fallthrough
		case opGone:
			if err := e.o.Store.DeleteVapiResource(ctx, e.org, it.kind.Dir, it.id); err != nil {
				return err
			}
			delete(e.ids[it.kind.Dir], it.id)
		}
	}
	return nil
}

// applyOne creates or updates one resource and saves what it applied. It
// reports whether a reference had to wait for a resource not created yet;
// linking is the second pass, which sets those references.
func (e *engine) applyOne(ctx context.Context, it *item, sum *Summary, linking bool) (bool, error) {
	want, deferred, probs := e.desired(it, true)
	if len(probs) > 0 {
		return false, errors.New(strings.Join(probs, "; "))
	}
	if hasPlaceholder(want) {
		return false, fmt.Errorf("%s %s: internal error: a placeholder would be sent", it.kind.Label, it.id)
	}
	out := e.o.Out
	if it.vapiID == "" {
		created, err := e.o.API.Create(ctx, it.kind.API, want)
		if err != nil {
			return false, fmt.Errorf("create %s %s: %w", it.kind.Label, it.id, err)
		}
		if created.ID() == "" {
			return false, fmt.Errorf("create %s %s: Vapi's answer has no id", it.kind.Label, it.id)
		}
		it.vapiID, it.cur = created.ID(), created
		e.ids[it.kind.Dir][it.id] = it.vapiID
		fmt.Fprintf(out, "created %s %s: %s\n", it.kind.Label, it.id, it.vapiID)
		sum.Created++
	} else {
		changes := Diff(it.base, it.cur, want, it.hasBase)
		patch := vapiapi.TopLevelPatch(it.kind.API, it.cur, Merge(it.cur, changes, e.o.Overwrite))
		if len(patch) > 0 {
			updated, err := e.o.API.Update(ctx, it.kind.API, it.vapiID, patch)
			if err != nil {
				return false, fmt.Errorf("update %s %s: %w", it.kind.Label, it.id, err)
			}
			it.cur = updated
			fields := make([]string, 0, len(patch))
			for k := range patch {
				fields = append(fields, k)
			}
			sort.Strings(fields)
			if linking {
				fmt.Fprintf(out, "linked %s %s (%s): %s (references to what was created after it)\n", it.kind.Label, it.id, it.vapiID, strings.Join(fields, ", "))
			} else {
				fmt.Fprintf(out, "updated %s %s (%s): %s\n", it.kind.Label, it.id, it.vapiID, strings.Join(fields, ", "))
				sum.Updated++
			}
		}
	}
	it.base, it.hasBase = want, true
	return deferred, e.save(ctx, it, want)
}

// save records a resource's Vapi id and what was applied, when they
// changed.
func (e *engine) save(ctx context.Context, it *item, applied vapiapi.Resource) error {
	b, err := vapiapi.Marshal(applied)
	if err != nil {
		return err
	}
	if s := it.stored; s != nil && s.VapiID == it.vapiID && string(s.LastApplied) == string(b) {
		return nil
	}
	en := Entry{Org: e.org, Kind: it.kind.Dir, LocalID: it.id, VapiID: it.vapiID, LastApplied: b, UpdatedAt: e.o.Now()}
	if err := e.o.Store.PutVapiResource(ctx, en); err != nil {
		return fmt.Errorf("save %s %s (%s is applied in Vapi): %w", it.kind.Label, it.id, it.vapiID, err)
	}
	it.stored = &en
	return nil
}

// writeState writes the id map into the state file, when there is one.
func (e *engine) writeState() error {
	if e.state == nil {
		return nil
	}
	for _, k := range Kinds() {
		for id := range e.state.IDs(k.Dir) {
			if e.ids[k.Dir][id] == "" {
				e.state.Set(k.Dir, id, "")
			}
		}
		for id, uuid := range e.ids[k.Dir] {
			e.state.Set(k.Dir, id, uuid)
		}
	}
	wrote, err := e.state.Write()
	if err != nil {
		return fmt.Errorf("write the state file: %w", err)
	}
	if wrote {
		fmt.Fprintf(e.o.Out, "state file written: %s\n", e.state.Path)
	}
	return nil
}

func hasPlaceholder(v any) bool {
	switch t := v.(type) {
	case string:
		return isPlaceholder(t)
	case map[string]any:
		for _, e := range t {
			if hasPlaceholder(e) {
				return true
			}
		}
	case vapiapi.Resource:
		return hasPlaceholder(map[string]any(t))
	case []any:
		for _, e := range t {
			if hasPlaceholder(e) {
				return true
			}
		}
	}
	return false
}

// lineWriter starts what apply prints with a blank line, below the plan,
// when there is anything to print.
type lineWriter struct {
	w       io.Writer
	started bool
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		if _, err := l.w.Write([]byte("\n")); err != nil {
			return 0, err
		}
	}
	return l.w.Write(p)
}
