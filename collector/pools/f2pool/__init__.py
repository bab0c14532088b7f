"""F2Pool API v2 account source (POST + JSON body, `F2P-API-SECRET` header)."""
