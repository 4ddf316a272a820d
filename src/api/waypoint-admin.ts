/* The waypoint's admin endpoint (localhost:15000 in its pod), as `ambit proxy-config` reads it. */

/** What `ambit proxy-config routes|clusters --waypoint` reads: the routes per Service port, and the backends. */
export interface WaypointRoutesDump {
  readonly waypoint: string;
  readonly services: readonly {
    readonly service: string;
    readonly port: number;
    readonly portName?: string;
    readonly appProtocol?: string;
    /** `HTTPRoute/ns/name` of the producer routes attached to the port. */
    readonly routes: readonly string[];
  }[];
  /** Consumer routes (in another namespace than their Service's), by client namespace. */
  readonly consumerRoutes: readonly {
    readonly route: string;
    readonly namespace: string;
    readonly parents: readonly string[];
  }[];
}

export interface WaypointClustersDump {
  readonly waypoint: string;
  readonly clusters: readonly {
    readonly service: string;
    readonly port: number;
    readonly endpoints: readonly {
      readonly address: string;
      readonly pod: string;
      readonly inFlight: number;
      readonly hbone: boolean;
      /** Left out by the Service's passive health check until then (back at the first sweep after); ISO time. */
      readonly ejectedUntil?: string;
    }[];
  }[];
  /** The BackendTrafficPolicy of each Service that has one, and what this replica has in flight to it. */
  readonly trafficPolicies?: readonly {
    readonly service: string;
    readonly description: string;
    readonly inFlight: {
      readonly requests: number;
      readonly connections: number;
      readonly pending: number;
      readonly retries: number;
    };
    /** With a passive health check: the endpoints ejected now, since and until when, and their ejections in a row. */
    readonly ejected?: readonly {
      readonly address: string;
      readonly since: string;
      readonly until: string;
      readonly ejections: number;
    }[];
  }[];
  /**
   * Each backend Service's retry budget in this replica (where its policy sets a retryConstraint):
   * the requests and retries counted in its window now.
   */
  readonly retryBudgets?: readonly {
    readonly service: string;
    readonly constraint: string;
    readonly requests: number;
    readonly retries: number;
  }[];
}

/** What `ambit proxy-config authn --waypoint` reads: the RequestAuthentications in force, and the JWKS fetches. */
export interface WaypointAuthnDump {
  readonly waypoint: string;
  readonly requestAuthentications: readonly {
    readonly policy: string;
    /** `Service/web`, `Gateway/waypoint`, `selector app=web`, or `namespace`. */
    readonly targets: readonly string[];
    readonly rules: readonly {
      readonly issuer: string;
      readonly audiences: readonly string[];
      /** `inline` or the jwksUri. */
      readonly jwks: string;
      readonly locations: readonly string[];
      readonly forwardOriginalToken: boolean;
    }[];
  }[];
  readonly jwks: readonly {
    readonly uri: string;
    readonly kids: readonly string[];
    readonly fetchedAt?: string;
    readonly lastError?: string;
    readonly fetches: number;
  }[];
  /** Tokens verified and kept for their next request (a hit skips the signature check). */
  readonly verifiedTokens: number;
}
