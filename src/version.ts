/** Ambit's version (package.json's), as the CLI prints it and rendered objects are labelled. */
export const AMBIT_VERSION = '0.1.0';
/** The image a rendered waypoint runs in a cluster (its entrypoint dispatches on the daemon name). */
export const AMBIT_IMAGE = `ghcr.io/ambit-mesh/ambit:${AMBIT_VERSION}`;
