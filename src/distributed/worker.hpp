// Private to the distributed module: ranks 1..N-1 of labeling. The main thread relays between
// this rank's compute thread (Mailbox) and rank 0: work requests and their answers, results,
// an error, a stop signal received here (reported to rank 0, which stops everyone) and rank 0's
// stop (passed to the compute thread through this rank's StopFlag).
#pragma once

#include "lifeline.hpp"
#include "mailbox.hpp"
#include "mll/core/signals.hpp"
#include "mll/distributed/comm.hpp"

namespace mll::distributed {

// Relays until rank 0 has answered a request with "no more work" and the compute thread has
// ended. Throws PeerLost as soon as `lifeline` saw a rank die (rank 0 would never answer),
// CommError.
void work(Comm& comm, Mailbox& mailbox, StopFlag& stop, const Lifeline& lifeline);

}  // namespace mll::distributed
