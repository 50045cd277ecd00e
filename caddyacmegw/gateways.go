package caddyacmegw

import "sync"

// gateways finds the running gateway of a name, for the admin API. During a
// config reload two handlers of one name live at once; the newest wins, and
// a handler leaving removes only itself.
var gateways = &registry{byName: map[string][]*Handler{}}

type registry struct {
	mu     sync.Mutex
	byName map[string][]*Handler
}

func (g *registry) add(h *Handler) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.byName[h.Name] = append(g.byName[h.Name], h)
}

func (g *registry) remove(h *Handler) {
	g.mu.Lock()
	defer g.mu.Unlock()
	list := g.byName[h.Name]
	for i, x := range list {
		if x == h {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(g.byName, h.Name)
		return
	}
	g.byName[h.Name] = list
}

// get returns the newest gateway of name, or nil.
func (g *registry) get(name string) *Handler {
	g.mu.Lock()
	defer g.mu.Unlock()
	list := g.byName[name]
	if len(list) == 0 {
		return nil
	}
	return list[len(list)-1]
}

// only returns the newest gateway when one name is running, and how many
// names are.
func (g *registry) only() (*Handler, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.byName); n != 1 {
		return nil, n
	}
	for _, list := range g.byName {
		return list[len(list)-1], 1
	}
	return nil, 0 // not reached: one name is running
}
