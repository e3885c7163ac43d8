/* cn_version.h: release version of every Canopy binary; the build adds the git commit. */
#ifndef CN_VERSION_H
#define CN_VERSION_H

#define CANOPY_VERSION "0.1.0"
#ifndef CANOPY_COMMIT
#define CANOPY_COMMIT "unknown"
#endif

#endif
