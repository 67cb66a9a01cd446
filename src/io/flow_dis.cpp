// flow_dis.cpp: OpenCV's DIS optical flow behind the C interface of flow.h.
#include <cstdio>
#include <exception>

#include <opencv2/core.hpp>
#include <opencv2/video/tracking.hpp>

extern "C" int nst_flow_dis(const unsigned char *a, const unsigned char *b, int w, int h,
                            int preset, float *flow, char *err, size_t errlen) {
    try {
        cv::Mat ma(h, w, CV_8UC1, const_cast<unsigned char *>(a));
        cv::Mat mb(h, w, CV_8UC1, const_cast<unsigned char *>(b));
        cv::Mat out(h, w, CV_32FC2, flow); // written in place
        cv::Ptr<cv::DISOpticalFlow> dis = cv::DISOpticalFlow::create(
            preset == 0 ? cv::DISOpticalFlow::PRESET_FAST : cv::DISOpticalFlow::PRESET_MEDIUM);
        if (preset >= 2) {
            dis->setPatchStride(2);
            dis->setVariationalRefinementIterations(10);
        }
        cv::Mat f;
        dis->calc(ma, mb, f);
        if (f.type() != CV_32FC2 || f.rows != h || f.cols != w) {
            std::snprintf(err, errlen, "optical flow: unexpected result");
            return -1;
        }
        f.copyTo(out);
        return 0;
    } catch (const std::exception &e) {
        std::snprintf(err, errlen, "optical flow: %s", e.what());
        return -1;
    } catch (...) {
        std::snprintf(err, errlen, "optical flow failed");
        return -1;
    }
}
