import { createServer } from 'node:net';

/*
 * Opens a listening TCP socket inside the network namespace this process was started in (by nsenter)
 * and hands it to the parent over the IPC channel, then exits. The local daemon, which lives in the
 * host's namespace, can then serve on an address of the cluster's fabric (where the control plane and
 * the node agents reach the Kubernetes API) without a forwarder and without a route off the machine.
 */
const [host, port] = process.argv.slice(2);
const server = createServer();
server.once('error', (err) => {
  process.stderr.write(`cannot listen on ${host}:${port}: ${err.message}\n`);
  process.exit(1);
});
server.listen({ host, port: Number(port), exclusive: true }, () => {
  process.send?.('listening', server, () => process.exit(0));
});
