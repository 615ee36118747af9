import { installLocalhostResolver } from './localhost-dns.js';

installLocalhostResolver();
