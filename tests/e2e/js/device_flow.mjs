// RFC 8628 device flow against a pairflow server, driven only through openid-client's public API.
//
//   node device_flow.mjs ISSUER CLIENT_ID [CLIENT_SECRET] [--scope SCOPE]
//
// Without CLIENT_SECRET the client is public (token_endpoint_auth_method "none"); with it,
// client_secret_basic. Prints one JSON object per line on stdout:
//   {"event": "device_authorization", ...the device authorization response}
//   {"event": "tokens", ...the token response}
// or {"event": "error", ...} and exits 1.
import * as client from 'openid-client'

function parseArgs(argv) {
  const positional = []
  let scope
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--scope') scope = argv[++i]
    else positional.push(argv[i])
  }
  const [issuer, clientId, clientSecret] = positional
  if (!issuer || !clientId) {
    console.error('usage: node device_flow.mjs ISSUER CLIENT_ID [CLIENT_SECRET] [--scope SCOPE]')
    process.exit(2)
  }
  return { issuer, clientId, clientSecret, scope }
}

function plain(value) {
  try {
    return JSON.parse(JSON.stringify(value ?? null))
  } catch {
    return String(value)
  }
}

function emit(event, body) {
  process.stdout.write(JSON.stringify({ event, ...body }) + '\n')
}

const { issuer, clientId, clientSecret, scope } = parseArgs(process.argv.slice(2))

try {
  const auth = clientSecret ? client.ClientSecretBasic(clientSecret) : client.None()
  const config = await client.discovery(new URL(issuer), clientId, clientSecret ? { client_secret: clientSecret } : undefined, auth, {
    algorithm: 'oauth2', // RFC 8414 /.well-known/oauth-authorization-server
    execute: [client.allowInsecureRequests], // plain HTTP to the loopback test server
  })
  const metadata = config.serverMetadata()
  const started = await client.initiateDeviceAuthorization(config, scope ? { scope } : {})
  emit('device_authorization', { ...started, token_endpoint: metadata.token_endpoint })
  const tokens = await client.pollDeviceAuthorizationGrant(config, started)
  emit('tokens', { ...tokens, expires_in: tokens.expiresIn() })
} catch (error) {
  emit('error', {
    name: error?.name,
    message: error?.message,
    code: error?.code,
    status: error?.status,
    error: error?.error,
    error_description: error?.error_description,
    cause: plain(error?.cause),
  })
  process.exit(1)
}
