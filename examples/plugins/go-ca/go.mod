module example.com/camblet-go-ca

go 1.22
