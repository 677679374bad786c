module github.com/IGLOU-EU/go-wildcard

go 1.21
