package listing

import "sort"

// Page returns up to limit (> 0) entries of sorted, which is in ascending
// order of key, from the first one after cursor, and the next cursor: the
// key of the last one returned when more follow, else "".
func Page[E any](sorted []E, key func(E) string, cursor string, limit int) (page []E, next string) {
	i := after(sorted, key, cursor)
	page = sorted[i:min(i+limit, len(sorted))]
	if i+len(page) < len(sorted) {
		next = key(page[len(page)-1])
	}
	return page, next
}

// Filter is Page for listings that skip entries: each entry after cursor
// goes through take, which returns what to list and whether to list it,
// until limit (> 0) are listed. next is then the key of the last one listed
// if take lists one more, else "". An error from take ends the listing.
func Filter[E, T any](sorted []E, key func(E) string, cursor string, limit int,
	take func(E) (T, bool, error)) (out []T, next string, err error) {
	for _, e := range sorted[after(sorted, key, cursor):] {
		v, ok, err := take(e)
		switch {
		case err != nil:
			return nil, "", err
		case !ok:
			continue
		case len(out) == limit:
			return out, next, nil
		}
		out, next = append(out, v), key(e)
	}
	return out, "", nil
}

// after returns the index of the first entry of sorted after cursor.
func after[E any](sorted []E, key func(E) string, cursor string) int {
	return sort.Search(len(sorted), func(i int) bool { return key(sorted[i]) > cursor })
}
