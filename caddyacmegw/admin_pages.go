package caddyacmegw

// The admin API's list pages, as the server writes them and the CLI reads
// them: the entries of one page, and the cursor of the next ("" on the
// last page).
type (
	registrationsPage struct {
		Registrations []registrationView `json:"registrations"`
		Next          string             `json:"next"`
	}
	accountsPage struct {
		Accounts []accountView `json:"accounts"`
		Next     string        `json:"next"`
	}
	ordersPage struct {
		Orders []orderView `json:"orders"`
		Next   string      `json:"next"`
	}
	certificatesPage struct {
		Certificates []certificateView `json:"certificates"`
		Next         string            `json:"next"`
	}
	auditPage struct {
		Audit []auditView `json:"audit"`
		Next  string      `json:"next"`
	}
)
