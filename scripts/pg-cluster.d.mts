export function findPostgresBinaries(): string | undefined;
export function startCluster(opts: { bin: string; settings?: string[]; tlsCa?: { cert: string; key: string } }): Promise<{ url: string; stop(): void }>;
