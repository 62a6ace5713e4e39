"""Users: the account model, its data access, and the /users endpoints."""
