#ifndef SL_VERSION_H
#define SL_VERSION_H

/* One version for both binaries: the cluster protocol compares major and minor. */
#define SL_VERSION_MAJOR 0
#define SL_VERSION_MINOR 1
#define SL_VERSION_PATCH 0
#define SL_VERSION "0.1.0"

#endif
