/** How a daemon reaches the Kubernetes API: a kubeconfig file, or the in-cluster service (env of a pod). */
export interface KubeSettings {
  readonly kubeconfig?: string;
  /** KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, as the kubelet sets them in every pod. */
  readonly inCluster: { readonly host?: string; readonly port?: string };
}

export function kubeSettings(kubeconfig: string | undefined, env: NodeJS.ProcessEnv): KubeSettings {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  return {
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    inCluster: { ...(host === undefined ? {} : { host }), ...(port === undefined ? {} : { port }) },
  };
}
