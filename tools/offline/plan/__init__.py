"""The offline plan: the program under Pulumi mocks, the stack-file schema, the credential shapes."""
