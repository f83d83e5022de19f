# The Vault/OpenBao ACL policy tenantry's token needs, for the default mounts
# (oidc, secret, kubernetes); change the mount names to match [vault] in
# tenantry.toml. The test suite applies, re-plans and destroys with a token
# holding exactly this policy.

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Accessor of the OIDC mount (aliases name their mount by accessor); the plan
# also checks that the mount exists.
path "sys/auth" {
  capabilities = ["read"]
}
# The plan checks that the kubernetes secrets engine and the KV v2 mount exist.
path "sys/mounts" {
  capabilities = ["read"]
}

path "sys/policies/acl" {
  capabilities = ["list"]
}
path "sys/policies/acl/namespace-owner-*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "identity/entity/id" {
  capabilities = ["list"]
}
path "identity/entity/id/*" {
  capabilities = ["read", "delete"]
}
path "identity/entity/name/*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "identity/entity-alias" {
  capabilities = ["create", "update"]
}
path "identity/entity-alias/id" {
  capabilities = ["list"]
}
path "identity/entity-alias/id/*" {
  capabilities = ["read", "update", "delete"]
}
path "identity/lookup/entity" {
  capabilities = ["create", "update"]
}

path "kubernetes/roles" {
  capabilities = ["list"]
}
path "kubernetes/roles/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# The destroy stage only: back up and delete a departed user's KV subtree.
path "secret/metadata/*" {
  capabilities = ["list", "read", "delete"]
}
path "secret/data/*" {
  capabilities = ["read"]
}
