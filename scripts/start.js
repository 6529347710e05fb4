#!/usr/bin/env node
'use strict';
// `npm start`: the gateway and one worker on this machine, on the embedded defaults.
// The gateway starts first: should Redis not answer, it says so in one line and nothing
// else starts. Ctrl-C (or SIGTERM) stops both the way each stops alone.
const { spawn } = require('node:child_process');
const { join } = require('node:path');
const { loadConfig } = require('@visionq/config');

const root = join(__dirname, '..');
const children = new Set();
let stopping = false;
/** The gateway answered: from here on a process that stops is news worth a line. */
let started = false;

function start(name) {
  const child = spawn(process.execPath, [join(root, 'apps', name, 'dist', 'main.js')], { stdio: 'inherit' });
  children.add(child);
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (!stopping) {
      // A gateway that stops while starting has said why in its own line; after that, say what happens.
      if (started) process.stderr.write(`visionq: the ${name} stopped (${signal ?? `exit ${code}`}); stopping the rest\n`);
      stop(code || 1);
    } else if (children.size === 0) {
      process.exit(process.exitCode ?? 0);
    }
  });
  return child;
}

function stop(code) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  if (children.size === 0) process.exit(code);
  for (const child of children) child.kill('SIGTERM');
}

async function gatewayAnswers(port, gateway) {
  for (let i = 0; i < 300 && gateway.exitCode === null; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

async function main() {
  const { port } = loadConfig().server;
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  const gateway = start('gateway');
  if (!(await gatewayAnswers(port, gateway))) return; // it has said why, or exits
  started = true;
  start('worker');
}

main().catch((err) => {
  process.stderr.write(`visionq: ${err.message}\n`);
  stop(1);
});
