#!/usr/bin/env node
'use strict';
// `npm start`: the gateway and one worker on this machine, on the embedded defaults.
// Redis first: the one at REDIS_URL when it answers; when nothing answers at a loopback
// REDIS_URL and redis-server is installed, one of our own on that port (data under
// DATA_DIR/redis, AOF on, loopback only), stopped last on exit; otherwise one line saying
// what to do. Then the gateway: should it stop while starting, it has said why in its own
// line and nothing else starts. Ctrl-C (or SIGTERM) stops each the way it stops alone.
const { spawn, spawnSync } = require('node:child_process');
const { mkdirSync } = require('node:fs');
const { connect } = require('node:net');
const { join, resolve } = require('node:path');
const { loadConfig } = require('@visionq/config');

const root = join(__dirname, '..');
/** The gateway and the worker; Redis, when ours, stops after them. */
const apps = new Set();
let redis = null;
let stopping = false;
/** The gateway answered: from here on a process that stops is news worth a line. */
let started = false;

function say(line) {
  process.stderr.write(`visionq: ${line}\n`);
}

function startApp(name) {
  const child = spawn(process.execPath, [join(root, 'apps', name, 'dist', 'main.js')], { stdio: 'inherit' });
  apps.add(child);
  child.on('exit', (code, signal) => {
    apps.delete(child);
    if (!stopping) {
      if (started) say(`the ${name} stopped (${signal ?? `exit ${code}`}); stopping the rest`);
      stop(code || 1);
    } else if (apps.size === 0) {
      stopRedis();
    }
  });
  return child;
}

function stop(code) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  if (apps.size === 0) stopRedis();
  for (const child of apps) child.kill('SIGTERM');
}

/** Our Redis, if any, last: the worker drains through it. SIGTERM makes it flush its AOF and exit. */
function stopRedis() {
  if (!redis || redis.exitCode !== null) process.exit(process.exitCode ?? 0);
  redis.once('exit', () => process.exit(process.exitCode ?? 0));
  redis.kill('SIGTERM');
}

/** Whether something speaking Redis answers at host:port (a PONG, or a refusal that asks for a password). */
function redisAnswers(host, port) {
  return new Promise((done) => {
    const socket = connect({ host, port });
    let reply = '';
    const finish = (answers) => {
      socket.destroy();
      done(answers);
    };
    socket.setTimeout(1_000, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (piece) => {
      reply += piece.toString('latin1');
      if (reply.includes('\r\n')) finish(/^(\+PONG|-NOAUTH|-WRONGPASS)/.test(reply));
    });
  });
}

function isLoopback(host) {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Makes sure a Redis answers at REDIS_URL; resolves false after saying, in one line, why none does. */
async function ensureRedis(config) {
  const url = config.redis.url;
  if (!/^rediss?:\/\//.test(url)) return true; // a Cluster or Sentinels: theirs to run; the gateway says if they do not answer
  const target = new URL(url);
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(target.port || 6379);
  if (await redisAnswers(host, port)) return true;
  if (!isLoopback(host) || target.protocol === 'rediss:') {
    say(`nothing answers at REDIS_URL=${url}: start Redis there, or point REDIS_URL at one that runs`);
    return false;
  }
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) {
    say(`nothing answers at REDIS_URL=${url}, and redis-server is not installed to start one: install it (apt-get install redis-server) or point REDIS_URL at a running Redis`);
    return false;
  }
  const dir = resolve(config.store.dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const args = ['--port', String(port), '--bind', host === 'localhost' ? '127.0.0.1' : host, '--protected-mode', 'yes', '--dir', dir, '--appendonly', 'yes', '--save', ''];
  if (target.password) args.push('--requirepass', decodeURIComponent(target.password));
  // A process group of its own: Ctrl-C in a terminal signals the whole foreground group, and
  // Redis must outlive the worker's drain; stopRedis() stops it last.
  redis = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  redis.on('exit', (code, signal) => {
    if (!stopping) {
      say(`its Redis on port ${port} stopped (${signal ?? `exit ${code}`}); stopping the rest`);
      stop(1);
    }
  });
  for (let i = 0; i < 100 && redis.exitCode === null; i++) {
    if (await redisAnswers(host, port)) {
      say(`started its own Redis on ${host}:${port} (data in ${dir}, append-only file on); it stops with npm start`);
      return true;
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  say(`could not start redis-server on port ${port} (see its lines above); start Redis yourself, or point REDIS_URL at one`);
  return false;
}

async function gatewayAnswers(port, gateway) {
  for (let i = 0; i < 300 && gateway.exitCode === null; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  return false;
}

async function main() {
  const config = loadConfig();
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  if (!(await ensureRedis(config))) return stop(69);
  if (stopping) return;
  const gateway = startApp('gateway');
  if (!(await gatewayAnswers(config.server.port, gateway))) return; // it has said why, or exits
  started = true;
  startApp('worker');
}

main().catch((err) => {
  say(err.message);
  stop(1);
});
