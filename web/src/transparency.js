// The transparency page: the checkpoint checked here, tree growth, a consistency check.
import { trustRoot } from "./app.js";
import { echarts } from "./charts.js";
import { b64decode, verifyCheckpoint, verifyConsistency } from "./verify.js";

export { b64decode, echarts, trustRoot, verifyCheckpoint, verifyConsistency };
